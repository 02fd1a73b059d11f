"""Run every server configuration through every scenario and print one table.

    python -m bench            # the full run (a few minutes)
    python -m bench --quick    # a short smoke run with tiny numbers
    python -m bench --help

Raw results go to bench/results/<time>.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import handshakes, loadgen, scaleout
from bench.servers import (
    API_KEY,
    BENCH_DIR,
    REPO_DIR,
    ServerSet,
    WebhookSink,
    new_logdir,
    node_available,
    redis_flush,
    start_redis,
)
from chat_server.core.auth import issue_token

KINDS = ("node", "plain", "plain-fast", "ours")
#: The label suffix of the rows run from ``--before``'s checkout.
BEFORE = "@before"
SCENARIOS = (
    "idle",
    "latency",
    "latency-light",
    "fanout",
    "fanout-cid",
    "changes",
    "rest",
    "handshakes",
    "idle-rooms",
    "reconnect-storm",
)
#: The scenarios of the first table.
MAIN = ("idle", "latency", "fanout", "fanout-cid", "changes", "rest")
#: Scenarios of features only our server has; the others skip them.
OURS_ONLY = ("fanout-cid", "changes")
#: In ``changes``, one edit or reaction for every this many messages (10%).
CHANGE_EVERY = 10
#: latency-light: the senders, besides the receivers.
LIGHT_SENDERS = 4
#: The label suffix of our rows in token mode (handshakes only).
TOKEN = " token"
#: The HS256 secret of those rows.
BENCH_SECRET = "bench-secret-of-at-least-32-bytes-0123456789"
#: File descriptors the bench keeps for itself besides its clients.
FD_SPARE = 500
#: Scenarios the token-mode rows run.
TOKEN_SCENARIOS = ("handshakes",)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short smoke run with tiny numbers")
    p.add_argument("--only", default=",".join(KINDS), help=f"servers to run ({','.join(KINDS)})")
    p.add_argument("--procs", default="1,2", help="process counts to run (1,2)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also run ours with --workers N on one port (0: skip)",
    )
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"scenarios ({','.join(SCENARIOS)})"
    )
    p.add_argument("--receivers", type=int, help="connections in the fan-out room (500)")
    p.add_argument("--senders", type=int, help="sending connections, part of the room (4)")
    p.add_argument("--window", type=int, help="un-finished messages per sender (16)")
    p.add_argument("--duration", type=float, help="seconds measured per fan-out run (10)")
    p.add_argument("--warmup", type=float, help="seconds of load before measuring (2)")
    p.add_argument("--text-size", type=int, default=64, help="characters per message (64)")
    p.add_argument("--idle", type=int, help="idle connections for the memory figure (2000)")
    p.add_argument("--latency-rate", type=float, help="messages/s for latency (100)")
    p.add_argument("--latency-room", type=int, help="room size for latency (100)")
    p.add_argument("--rest-connections", type=int, help="concurrent REST clients (8)")
    p.add_argument(
        "--light-rates", help="latency-light: messages/s in total, comma-separated (50,100)"
    )
    p.add_argument("--light-room", type=int, help="latency-light: receivers besides senders (100)")
    p.add_argument("--light-duration", type=float, help="latency-light: seconds measured (5)")
    p.add_argument("--handshakes", type=int, help="handshakes: connect + auth + join count (1000)")
    p.add_argument("--in-flight", type=int, help="handshakes at once in the connection scenarios")
    p.add_argument("--idle-rooms", type=int, help="idle-rooms: connections, one room each (5000)")
    p.add_argument(
        "--idle-20k",
        action="store_true",
        help="idle-rooms: also measure 20,000 connections (raises the file limit)",
    )
    p.add_argument("--storm", type=int, help="reconnect-storm: connected clients (5000)")
    p.add_argument("--rooms", type=int, help="rooms of the connection scenarios (50)")
    p.add_argument("--out", type=Path, help="JSON file for the raw results")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every row this many times, interleaved; the table shows medians (1)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for our server (repeatable), e.g. to switch off "
        "an optimisation and measure what it buys",
    )
    p.add_argument("--label", default="", help="suffix for our server's rows")
    p.add_argument(
        "--before",
        type=Path,
        help="also run ours from this checkout (say, a git worktree of an earlier commit), "
        "as rows labelled 'ours@before' (and 'ours@before +hooks' with --webhooks), "
        "to compare two versions in one run",
    )
    p.add_argument(
        "--scaleout",
        metavar="PROCS",
        help="run only the scale-out scenario (bench/scaleout.py) with these process "
        "counts, comma-separated (say 2,4), per-room routing against one channel",
    )
    p.add_argument(
        "--webhooks",
        action="store_true",
        help="also run ours with webhooks on, POSTed to a loopback receiver answering 200 "
        "at once (rows '+hooks'), and report each scenario's webhook delay",
    )
    p.add_argument(
        "--ablate",
        default="",
        help="also run ours (1 process) with each of these speed-ups off, comma-separated "
        "(fanout,orjson,uvloop,gc,all), to measure what each buys",
    )
    return p


def _defaults(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    values = {
        "receivers": 40 if quick else 500,
        "senders": 2 if quick else 4,
        "window": 16,
        "duration": 1.5 if quick else 10.0,
        "warmup": 0.5 if quick else 2.0,
        "idle": 50 if quick else 2000,
        "latency_rate": 50.0 if quick else 100.0,
        "latency_room": 20 if quick else 100,
        "latency_duration": 1.5 if quick else 5.0,
        "rest_connections": 2 if quick else 8,
        "rest_receivers": 10 if quick else 100,
        "rest_duration": 1.0 if quick else 5.0,
        "light_rates": "20,40" if quick else "50,100",
        "light_room": 10 if quick else 100,
        "light_duration": 1.0 if quick else 5.0,
        "handshakes": 40 if quick else 1000,
        "in_flight": 20 if quick else 100,
        "idle_rooms": 60 if quick else 5000,
        "storm": 40 if quick else 5000,
        "rooms": 5 if quick else 50,
    }
    for key in values:
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    values["text_size"] = args.text_size
    values["idle_20k"] = args.idle_20k
    return values


def _ours_has_workers() -> bool:
    try:
        out = subprocess.run(
            [sys.executable, "-m", "chat_server", "--help"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--workers" in out


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    for dist in ("python-socketio", "python-engineio", "aiohttp", "uvloop", "orjson"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    try:
        out["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        lock = json.loads((BENCH_DIR / "node" / "package-lock.json").read_text())
        out["socket.io"] = lock["packages"]["node_modules/socket.io"]["version"]
    except (OSError, KeyError, ValueError, subprocess.TimeoutExpired):
        pass
    return out


async def _scenario(
    name: str,
    make: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
    servers: ServerSet,
    sink: WebhookSink | None = None,
) -> dict[str, Any]:
    t0 = time.monotonic()
    if sink is not None:
        await sink.stats()  # what earlier scenarios left behind is not this one's
    try:
        result = await make()
        if sink is not None:
            result["webhooks"] = await sink.stats(settle=True)
    except Exception as exc:  # one failed scenario must not end the whole run
        result = {"error": f"{type(exc).__name__}: {exc}"}
    if not servers.alive():
        result["error"] = result.get("error", "") + " (a server process died)"
    result["wall_s"] = round(time.monotonic() - t0, 2)
    print(f"    {name:17} {_summary(name, result)}", flush=True)
    return result


def _summary(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    if name == "idle":
        return f"{r['kib_per_conn']:.1f} KiB/conn over {r['connections']} connections"
    if name == "handshakes" or name.startswith("idle-rooms"):
        return (
            f"{r['connects_per_s']:.0f} connects/s, {r['cpu_ms_per_conn']:.2f} CPU ms each "
            f"(+{r['cpu_ms_per_disconnect']:.2f} to disconnect), "
            f"{r['kib_per_conn']:.1f} KiB/conn over {r['connections']} connections "
            f"in {r['rooms']} rooms"
        )
    if name == "reconnect-storm":
        return (
            f"{r['back']}/{r['connections']} back in {r['all_back_s']:.2f} s "
            f"({r['first_to_last_s']:.2f} s from the first back to the last), "
            f"peak {r['peak_rss_mib']:.0f} MiB, unavailable {r['unavailable']}, "
            f"join errors {r['join_errors']}"
        )
    if name == "rest":
        return (
            f"{r['requests_per_s']:.0f} req/s, {r['cpu_ms_per_request']:.3f} CPU ms/req, "
            f"lost {r['lost']}, http errors {r['http_errors']}, "
            f"generator {r['loadgen_cpu_share']:.0%} of a core"
        )
    text = (
        f"{r['deliveries_per_s']:.0f} deliveries/s, "
        f"{_fmt(r['cpu_s_per_100k'], '.2f')} CPU s/100k, lost {r['lost']}, "
        f"reordered {r['reordered']}, ack errors {r['ack_errors']}, "
        f"generator {r['loadgen_cpu_share']:.0%} of a core"
    )
    if name == "changes":
        text += f", {r['changes']} changes ({r['change_errors']} refused)"
    if name.startswith("latency"):
        text += f", p50 {_fmt(r['p50_ms'], '.1f')} ms, p99 {_fmt(r['p99_ms'], '.1f')} ms"
    hooks = r.get("webhooks")
    if hooks is not None:
        text += (
            f"; webhooks: {hooks['count']} received, p50 {_fmt(hooks['p50_ms'], '.1f')} ms,"
            f" p99 {_fmt(hooks['p99_ms'], '.1f')} ms, max {_fmt(hooks['max_ms'], '.1f')} ms"
        )
    return text


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _auths(names: list[str], secret: str | None) -> list[dict[str, Any]]:
    """Guest ``auth`` objects, or, with ``secret``, token ones (made here, not timed)."""
    if secret is None:
        return [{"username": n} for n in names]
    return [{"token": issue_token(secret, n, 3600)} for n in names]


async def _connection_scenarios(
    servers: ServerSet,
    cfg: dict[str, Any],
    scenarios: list[str],
    restart: Callable[[], float],
    secret: str | None,
) -> dict[str, Any]:
    """handshakes, idle-rooms and reconnect-storm (bench/handshakes.py)."""
    ports, pids = servers.ports, servers.pids
    out: dict[str, Any] = {}
    tag = f"{servers.kind[:2]}{servers.processes}{'t' if secret else ''}"
    rooms, in_flight = cfg["rooms"], cfg["in_flight"]
    if "handshakes" in scenarios:
        names = [f"{tag}h{i}" for i in range(cfg["handshakes"])]
        out["handshakes"] = await _scenario(
            "handshakes",
            lambda: handshakes.handshakes(
                ports, pids, auths=_auths(names, secret), rooms=rooms, in_flight=in_flight
            ),
            servers,
        )
    # The bench holds one descriptor per client: where the hard file limit
    # is 20,000 (as on the project's machine), the "20k" run stays under it.
    big = min(20_000, cfg["file_limit"] - FD_SPARE)
    counts = [cfg["idle_rooms"]] + ([big] if cfg["idle_20k"] else [])
    for n in counts if "idle-rooms" in scenarios else []:
        name = "idle-rooms" if n == counts[0] else f"idle-rooms@{n}"
        names = [f"{tag}i{n}-{i}" for i in range(n)]
        out[name] = await _scenario(
            name,
            lambda names=names: handshakes.handshakes(  # type: ignore[misc]
                ports, pids, auths=_auths(names, secret), rooms=rooms, in_flight=in_flight
            ),
            servers,
        )
    if "reconnect-storm" in scenarios:
        names = [f"{tag}s{i}" for i in range(cfg["storm"])]
        out["reconnect-storm"] = await _scenario(
            "reconnect-storm",
            lambda: handshakes.reconnect_storm(
                ports,
                pids,
                lambda: asyncio.to_thread(restart),
                auths=_auths(names, secret),
                rooms=rooms,
                in_flight=in_flight,
                with_since=servers.kind == "ours",
            ),
            servers,
        )
    return out


async def _run_config(
    servers: ServerSet,
    cfg: dict[str, Any],
    scenarios: list[str],
    sink: WebhookSink | None = None,
    restart: Callable[[], float] | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    ports, pids = servers.ports, servers.pids
    out: dict[str, Any] = {}
    tag = f"{servers.kind[:2]}{servers.processes}"
    if "idle" in scenarios:
        out["idle"] = await _scenario(
            "idle",
            lambda: loadgen.idle_memory(ports, pids, connections=cfg["idle"], tag=f"{tag}i"),
            servers,
            sink,
        )
    if "latency" in scenarios:
        out["latency"] = await _scenario(
            "latency",
            lambda: loadgen.room_fanout(
                ports,
                pids,
                receivers=cfg["latency_room"],
                senders=cfg["senders"],
                duration=cfg["latency_duration"],
                warmup=cfg["warmup"],
                rate=cfg["latency_rate"],
                text_size=cfg["text_size"],
                tag=f"{tag}l",
            ),
            servers,
            sink,
        )
    for rate in (float(r) for r in cfg["light_rates"].split(",") if r):
        if "latency-light" not in scenarios:
            break
        name = f"latency-light@{rate:g}"
        out[name] = await _scenario(
            name,
            lambda rate=rate: loadgen.room_fanout(  # type: ignore[misc]
                ports,
                pids,
                receivers=cfg["light_room"] + LIGHT_SENDERS,
                senders=LIGHT_SENDERS,
                duration=cfg["light_duration"],
                warmup=cfg["warmup"],
                rate=rate,
                text_size=cfg["text_size"],
                tag=f"{tag}L{rate:g}-",
                scheduled=True,
            ),
            servers,
        )
    if "fanout" in scenarios:
        out["fanout"] = await _scenario(
            "fanout",
            lambda: loadgen.room_fanout(
                ports,
                pids,
                receivers=cfg["receivers"],
                senders=cfg["senders"],
                window=cfg["window"],
                duration=cfg["duration"],
                warmup=cfg["warmup"],
                text_size=cfg["text_size"],
                tag=f"{tag}f",
            ),
            servers,
            sink,
        )
    extras = {"fanout-cid": {"client_ids": True}, "changes": {"change_every": CHANGE_EVERY}}
    for name, extra in extras.items():
        if name not in scenarios or servers.kind != "ours":
            continue
        out[name] = await _scenario(
            name,
            lambda extra=extra, name=name: loadgen.room_fanout(  # type: ignore[misc]
                ports,
                pids,
                receivers=cfg["receivers"],
                senders=cfg["senders"],
                window=cfg["window"],
                duration=cfg["duration"],
                warmup=cfg["warmup"],
                text_size=cfg["text_size"],
                tag=f"{tag}{name[:2]}",
                **extra,
            ),
            servers,
            sink,
        )
    if "rest" in scenarios:
        out["rest"] = await _scenario(
            "rest",
            lambda: loadgen.rest_emit(
                ports,
                pids,
                api_key=API_KEY,
                receivers=cfg["rest_receivers"],
                connections=cfg["rest_connections"],
                duration=cfg["rest_duration"],
                text_size=cfg["text_size"],
                tag=f"{tag}r",
            ),
            servers,
            sink,
        )
    if restart is not None:
        out.update(await _connection_scenarios(servers, cfg, scenarios, restart, secret))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = _defaults(args)
    kinds = [k for k in args.only.split(",") if k]
    procs = [int(p) for p in args.procs.split(",") if p]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for k in kinds:
        if k not in KINDS:
            raise SystemExit(f"unknown server {k!r}; choose from {', '.join(KINDS)}")
    extra_env = dict(e.split("=", 1) for e in args.env)
    # 5,000 (or 20,000) connections need as many descriptors here and in
    # every server, which inherits this limit.
    cfg["file_limit"] = handshakes.raise_file_limit(65_536)
    logdir = new_logdir()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv[1:],
        "config": cfg,
        "versions": _versions(),
        "notes": [],
        "rows": [],
    }
    plan: list[tuple[str, int, int, dict[str, str], str]] = [
        (k, p, 1, extra_env if k == "ours" else {}, args.label if k == "ours" else "")
        for p in procs
        for k in kinds
    ]
    if args.before is not None:
        plan += [("ours", p, 1, extra_env, BEFORE) for p in procs]
    if "ours" in kinds and any(s in TOKEN_SCENARIOS for s in scenarios):
        token_env = {**extra_env, "CHAT_SECRET": BENCH_SECRET}
        plan += [("ours", p, 1, token_env, TOKEN) for p in procs]
        if args.before is not None:
            plan += [("ours", p, 1, token_env, BEFORE + TOKEN) for p in procs]
    for name in (n for n in args.ablate.split(",") if n):
        off = "fanout,orjson,uvloop,gc" if name == "all" else name
        plan.append(("ours", 1, 1, {**extra_env, "CHAT_SPEEDUPS_OFF": off}, f" -{name}"))
    sink = None
    if args.webhooks:
        sink = WebhookSink(logdir)
        plan += [("ours", p, 1, {**extra_env, **sink.env}, " +hooks") for p in procs]
        if args.before is not None:
            plan += [("ours", p, 1, {**extra_env, **sink.env}, BEFORE + " +hooks") for p in procs]
    if "ours" in kinds and args.workers > 1:
        if _ours_has_workers():
            plan.append(("ours", 1, args.workers, extra_env, args.label))
        else:
            report["notes"].append("ours has no --workers flag yet: workers row skipped")
    if "node" in kinds:
        reason = node_available()
        if reason is not None:
            report["notes"].append(f"Node baseline skipped: {reason}")
            plan = [row for row in plan if row[0] != "node"]
    for note in report["notes"]:
        print(f"note: {note}", flush=True)
    redis = redis_url = None
    if any(p > 1 or w > 1 for _, p, w, _, _ in plan):
        redis, redis_url = start_redis(logdir)
    try:
        for repeat, (kind, nproc, workers, env, suffix) in (
            (r, row) for r in range(max(1, args.repeat)) for row in plan
        ):
            linked = nproc > 1 or workers > 1
            if linked and redis_url:
                redis_flush(redis_url)
            servers = ServerSet(
                kind,
                nproc,
                redis_url if linked else None,
                logdir,
                workers=workers,
                extra_env=env,
                source=args.before if suffix.startswith(BEFORE) else REPO_DIR,
            )
            label = servers.label + suffix
            print(
                f"{label}, {nproc} process{'es' if nproc > 1 else ''}"
                f"{' over Redis' if linked else ''}:",
                flush=True,
            )
            row: dict[str, Any] = {
                "label": label,
                "kind": kind,
                "procs": nproc,
                "workers": workers,
                "redis": linked,
                "repeat": repeat,
            }
            try:
                servers.start()
            except RuntimeError as exc:
                row["error"] = str(exc)
                print(f"    ERROR {exc}", flush=True)
                report["rows"].append(row)
                continue
            pids: list[int] = []
            if redis is not None and linked:
                pids = [redis.popen.pid]

            def server_and_redis_pids(
                servers: ServerSet = servers, extra: list[int] = pids
            ) -> list[int]:
                return servers.pids() + extra

            measured = ServerSet(kind, nproc, None, logdir)
            measured.procs, measured.ports = servers.procs, servers.ports
            measured.pids = server_and_redis_pids  # type: ignore[method-assign]
            token = suffix.endswith(TOKEN)
            try:
                hooked = sink if suffix.endswith(" +hooks") else None
                row["scenarios"] = await _run_config(
                    measured,
                    cfg,
                    [s for s in scenarios if s in TOKEN_SCENARIOS] if token else scenarios,
                    hooked,
                    restart=servers.restart,
                    secret=BENCH_SECRET if token else None,
                )
            finally:
                servers.stop()
            report["rows"].append(row)
    finally:
        if redis is not None:
            redis.stop()
        if sink is not None:
            sink.stop()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report["summary"] = merge_repeats(report["rows"])
    report["logdir"] = str(logdir)
    return report


def _get(row: dict[str, Any] | None, scenario: str, key: str) -> Any:
    if row is None:
        return None
    return row.get("scenarios", {}).get(scenario, {}).get(key)


#: Figures that add up over repeats rather than take the median.
_SUMMED = (
    "lost",
    "duplicated",
    "reordered",
    "ack_errors",
    "http_errors",
    "disconnected",
    "unavailable",
    "join_errors",
)


def merge_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per label: the median of each figure over its repeats (sums for losses)."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["label"], row["procs"], row["workers"]), []).append(row)
    merged = []
    for group in groups.values():
        ok = [r for r in group if "error" not in r]
        if not ok:
            merged.append(group[0])
            continue
        row = {k: v for k, v in ok[0].items() if k not in ("scenarios", "repeat")}
        row["repeats"] = len(ok)
        row["scenarios"] = {}
        for name in ok[0].get("scenarios", {}):
            runs = [
                r["scenarios"][name] for r in ok if "error" not in r["scenarios"].get(name, {})
            ]
            if not runs:
                row["scenarios"][name] = ok[0]["scenarios"][name]
                continue
            figures: dict[str, Any] = {}
            for key, value in runs[0].items():
                values = [run.get(key) for run in runs]
                numbers = [v for v in values if isinstance(v, int | float)]
                if key in _SUMMED:
                    figures[key] = sum(numbers)
                elif numbers and len(numbers) == len(values) and not isinstance(value, bool):
                    figures[key] = statistics.median(numbers)
                else:
                    figures[key] = value
            row["scenarios"][name] = figures
        merged.append(row)
    return merged


def table(report: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = merge_repeats(report["rows"])

    def baseline(kind: str, nproc: int) -> dict[str, Any] | None:
        for r in rows:
            if r["kind"] == kind and r["procs"] == nproc and r["workers"] == 1:
                return r
        return None

    def ratio(row: dict[str, Any], base: dict[str, Any] | None) -> str:
        mine = _get(row, "fanout", "cpu_s_per_100k")
        theirs = _get(base, "fanout", "cpu_s_per_100k") if base else None
        return f"{theirs / mine:.2f}x" if mine and theirs else "-"

    def speed(row: dict[str, Any], base: dict[str, Any] | None) -> str:
        mine = _get(row, "fanout", "deliveries_per_s")
        theirs = _get(base, "fanout", "deliveries_per_s") if base else None
        return f"{mine / theirs:.2f}x" if mine and theirs else "-"

    head = (
        "server",
        "procs",
        "deliv/s",
        "CPU s/100k",
        "eff vs node",
        "eff vs plain",
        "rate vs node",
        "lost",
        "reord",
        "p50 ms",
        "p99 ms",
        "idle KiB/conn",
        "cid CPU s/100k",
        "changes CPU s/100k",
        "REST req/s",
        "REST CPU ms/req",
        "gen CPU",
    )
    lines = [head]
    for r in rows:
        procs = f"{r['workers']}w" if r["workers"] > 1 else str(r["procs"])
        if "error" in r:
            lines.append((r["label"], procs, "error", *[""] * (len(head) - 3)))
            continue
        n = r["procs"] * r["workers"]
        node, plain = baseline("node", n), baseline("plain", n)
        lost = sum(_get(r, s, "lost") or 0 for s in ("latency", "fanout", "rest"))
        reord = sum(_get(r, s, "reordered") or 0 for s in ("latency", "fanout", "rest"))
        lines.append(
            (
                r["label"],
                procs,
                _fmt(_get(r, "fanout", "deliveries_per_s"), ".0f"),
                _fmt(_get(r, "fanout", "cpu_s_per_100k"), ".2f"),
                ratio(r, node),
                ratio(r, plain),
                speed(r, node),
                str(lost),
                str(reord),
                _fmt(_get(r, "latency", "p50_ms"), ".1f"),
                _fmt(_get(r, "latency", "p99_ms"), ".1f"),
                _fmt(_get(r, "idle", "kib_per_conn"), ".1f"),
                _fmt(_get(r, "fanout-cid", "cpu_s_per_100k"), ".2f"),
                _fmt(_get(r, "changes", "cpu_s_per_100k"), ".2f"),
                _fmt(_get(r, "rest", "requests_per_s"), ".0f"),
                _fmt(_get(r, "rest", "cpu_ms_per_request"), ".3f"),
                _fmt(_get(r, "fanout", "loadgen_cpu_share"), ".0%"),
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(out)


def _markdown(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    out = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(out)


def connection_table(report: dict[str, Any]) -> str | None:
    """The light-latency and connection scenarios, one row per server; None if none ran."""
    rows = merge_repeats(report["rows"])
    light = sorted(
        {n for r in rows for n in r.get("scenarios", {}) if n.startswith("latency-light@")},
        key=lambda n: float(n.split("@")[1]),
    )
    idle = sorted(
        {n for r in rows for n in r.get("scenarios", {}) if n.startswith("idle-rooms")},
        key=len,
    )
    conn = ("handshakes", "reconnect-storm")
    if not light and not idle and not any(_get(r, c, "connections") for r in rows for c in conn):
        return None
    head: tuple[str, ...] = ("server", "procs")
    for n in light:
        rate = n.split("@")[1]
        head += (f"{rate}/s p50 ms", f"{rate}/s p99 ms", f"{rate}/s CPU s/100k")
    head += ("connects/s", "CPU ms/conn", "CPU ms/disconnect")
    head += tuple(f"KiB/conn @{int(_get_any(rows, n, 'connections'))}" for n in idle)
    head += ("storm s", "storm first to last s", "storm peak MiB", "storm unavailable")
    lines = [head]
    for r in rows:
        if "error" in r:
            continue
        procs = f"{r['workers']}w" if r["workers"] > 1 else str(r["procs"])
        line: tuple[str, ...] = (r["label"], procs)
        for n in light:
            figures = (("p50_ms", ".1f"), ("p99_ms", ".1f"), ("cpu_s_per_100k", ".2f"))
            line += tuple(_fmt(_get(r, n, k), f) for k, f in figures)
        line += (
            _fmt(_get(r, "handshakes", "connects_per_s"), ".0f"),
            _fmt(_get(r, "handshakes", "cpu_ms_per_conn"), ".2f"),
            _fmt(_get(r, "handshakes", "cpu_ms_per_disconnect"), ".2f"),
        )
        line += tuple(_fmt(_get(r, n, "kib_per_conn"), ".1f") for n in idle)
        line += tuple(
            _fmt(_get(r, "reconnect-storm", k), f)
            for k, f in (
                ("all_back_s", ".2f"),
                ("first_to_last_s", ".2f"),
                ("peak_rss_mib", ".0f"),
                ("unavailable", "d"),
            )
        )
        lines.append(line)
    return _markdown(lines)


def _get_any(rows: list[dict[str, Any]], scenario: str, key: str) -> Any:
    return next((v for r in rows if (v := _get(r, scenario, key)) is not None), None)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.scaleout:
        return _main_scaleout(args)
    try:
        import uvloop
    except ImportError:
        report = asyncio.run(run(args))
    else:
        report = uvloop.run(run(args))
    out = args.out or BENCH_DIR / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print()
    if any(name in r.get("scenarios", {}) for r in report["rows"] for name in MAIN):
        print(table(report))
        print()
    more = connection_table(report)
    if more is not None:
        print(more)
        print()
    print(
        "eff = deliveries per server CPU second (server processes + their Redis), as a "
        "ratio to the baseline with the same number of processes; gen CPU = the load "
        "generator's share of one core during the fan-out run."
    )
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"raw results: {out}")
    return 0


def _main_scaleout(args: argparse.Namespace) -> int:
    counts = [int(p) for p in args.scaleout.split(",") if p]
    report = asyncio.run(
        scaleout.run(
            counts,
            kinds=args.only.split(","),
            quick=args.quick,
            duration=args.duration,
            warmup=args.warmup,
        )
    )
    out = args.out or BENCH_DIR / "results" / time.strftime("scaleout-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print()
    print(scaleout.table(report))
    print()
    print(
        "CPU per 100k deliveries: user + system of every server process (or of the "
        "private redis-server; for the cluster row, of its three masters together), "
        "over the measured seconds, for the same paced load."
    )
    print(f"raw results: {out}")
    return 0
