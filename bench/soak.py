"""A bounded soak: two chat processes over one Redis, users churning, faults one after another.

    python -m bench.soak                       # the full run: 3 minutes of phases (~3.5 min)
    python -m bench.soak --minutes 1 --clients 40
    python -m bench.soak --phases calm,pubsub-kill,sigterm --minutes 0.5
    python -m bench.soak --help

Prints one row per fault phase of what went wrong (acked but lost, out of
order, owed but never seen, duplicates, ghosts in ``members``, failed sends by
outcome) and writes everything as JSON (``--out``). See bench/README.md, "Soak".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.soak_clients import Ledger, SoakUser, now_ms, rest_bot
from bench.soak_procs import ChatProcess, RedisProcess, stop_all
from bench.soak_report import Epoch, Phase, account, read_store, table

API_KEY = "soak-key"
PRESENCE_TTL = 5
#: Seconds Redis stays down when killed, and frozen when stopped.
REDIS_DOWN = 3.0
REDIS_FROZEN = 8.0
#: Share of a phase spent calm before its fault starts.
CALM_BEFORE = 1 / 3
PHASES = ("calm", "redis-kill", "redis-freeze", "pubsub-kill", "sigterm", "sigkill", "calm")
RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0, help="time for all the phases (3)")
    p.add_argument("--clients", type=int, default=120, help="simulated users (120)")
    p.add_argument("--rooms", type=int, default=12, help="rooms (12)")
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.add_argument("--out", type=Path, help="JSON file (bench/results/soak-<time>.json)")
    p.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated phases, in order ({','.join(dict.fromkeys(PHASES))})",
    )
    p.add_argument("--churn", type=float, default=5.0, help="reconnects asked for per second (5)")
    p.add_argument(
        "--room-interval",
        type=float,
        default=4.0,
        help="mean s between a user's room messages (4)",
    )
    p.add_argument("--bot-rate", type=float, default=3.0, help="REST messages per second (3)")
    return p


class Soak:
    """The processes, the users and the fault schedule of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.logdir = Path(tempfile.mkdtemp(prefix="chat-soak-"))
        self.redis = RedisProcess(self.logdir)
        seconds = args.minutes * 60
        per_second = args.clients / args.room_interval + args.clients / 20 + args.bot_rate
        history = max(10_000, int(per_second * (seconds + 60) * 2))
        env = {
            "REDIS_URL": self.redis.url,
            "CHAT_API_KEY": API_KEY,
            "CHAT_HISTORY_SIZE": str(history),
            "CHAT_PRESENCE_TTL": str(PRESENCE_TTL),
            "CHAT_RATE_BURST": "10000",
            "CHAT_RATE_PER_SECOND": "10000",
            "CHAT_API_RATE_PER_SECOND": "10000",
            "LOG_LEVEL": "WARNING",
        }
        self.env = env
        self.procs = [
            ChatProcess("chat-a", self.logdir, env),
            ChatProcess("chat-b", self.logdir, env),
        ]
        self.up: set[str] = set()
        self.ledger = Ledger(ttl_ms=PRESENCE_TTL * 1000.0)
        self.phases: list[Phase] = []
        self.epochs = [Epoch(start=0.0)]
        self.stopping = asyncio.Event()
        self.users = self._users()
        self.notes: list[str] = []

    def _users(self) -> list[SoakUser]:
        args, rng = self.args, self.rng
        rooms = [f"soak-{n:02d}" for n in range(args.rooms)]
        names = [f"u{n:03d}" for n in range(args.clients)]
        # A quarter of the users talk privately, in pairs.
        paired = names[: (args.clients // 4) * 2 // 2 * 2]
        partners: dict[str, list[str]] = {n: [] for n in names}
        for a, b in zip(paired[::2], paired[1::2], strict=True):
            partners[a].append(b)
            partners[b].append(a)
        return [
            SoakUser(
                name,
                rng.sample(rooms, min(len(rooms), 1 + n % 2)),
                partners[name],
                self.ledger,
                self.pick_url,
                random.Random(rng.random()),
                room_interval=args.room_interval,
                private_interval=5.0,
            )
            for n, name in enumerate(names)
        ]

    def pick_url(self) -> str:
        live = sorted(self.up) or [p.url for p in self.procs]
        return self.rng.choice(live)

    # -- faults ------------------------------------------------------------------

    async def _redis_kill(self, phase: Phase) -> None:
        snapshot_at = now_ms()
        snapshot = await read_store(self.redis.url)
        killed_at = now_ms()
        self.redis.kill()
        epoch = self.epochs[-1]
        epoch.end, epoch.snapshot_at, epoch.store = killed_at, snapshot_at, snapshot
        phase.events.append(f"snapshot of {sum(map(len, snapshot.values()))} messages; SIGKILL")
        await asyncio.sleep(REDIS_DOWN)
        await self.redis.start()
        self.epochs.append(Epoch(start=killed_at))
        phase.events.append("redis restarted (empty): a new accounting epoch")

    async def _redis_freeze(self, phase: Phase) -> None:
        self.redis.freeze()
        phase.events.append("SIGSTOP")
        try:
            await asyncio.sleep(REDIS_FROZEN)
        finally:
            self.redis.thaw()
        phase.events.append("SIGCONT")

    async def _pubsub_kill(self, phase: Phase) -> None:
        client = aioredis.Redis.from_url(self.redis.url, socket_timeout=5)
        try:
            killed = await client.execute_command(  # type: ignore[no-untyped-call]
                "CLIENT", "KILL", "TYPE", "pubsub"
            )
        finally:
            await client.aclose()
        phase.events.append(f"CLIENT KILL TYPE pubsub: {killed} killed")

    async def _restart(self, phase: Phase, proc: ChatProcess, how: str) -> None:
        self.up.discard(proc.url)
        t0 = time.monotonic()
        code = await (proc.terminate() if how == "SIGTERM" else proc.kill())
        phase.events.append(f"{proc.name} {how}: exit {code} after {time.monotonic() - t0:.1f} s")
        if how == "SIGTERM" and code != 0:
            self.notes.append(f"{proc.name} exited {code} on SIGTERM, not 0")
        await proc.start()
        self.up.add(proc.url)
        phase.events.append(f"{proc.name} restarted")

    def _fault(self, name: str) -> Callable[[Phase], Awaitable[None]] | None:
        faults: dict[str, Callable[[Phase], Awaitable[None]]] = {
            "redis-kill": self._redis_kill,
            "redis-freeze": self._redis_freeze,
            "pubsub-kill": self._pubsub_kill,
            "sigterm": lambda phase: self._restart(phase, self.procs[0], "SIGTERM"),
            "sigkill": lambda phase: self._restart(phase, self.procs[1], "SIGKILL"),
        }
        if name != "calm" and name not in faults:
            raise SystemExit(
                f"unknown phase {name!r}; choose from {', '.join(dict.fromkeys(PHASES))}"
            )
        return faults.get(name)

    # -- the run -------------------------------------------------------------------

    async def _churn(self) -> None:
        """Ask ``--churn`` users a second to leave: most for a moment, some for over the TTL."""
        while not self.stopping.is_set():
            await asyncio.sleep(1 / self.args.churn)
            steady = [u for u in self.users if u.steady]
            if steady:
                away = (
                    self.rng.uniform(7, 11)
                    if self.rng.random() < 0.15
                    else self.rng.uniform(0.05, 0.5)
                )
                self.rng.choice(steady).churn(away)

    async def run(self) -> dict[str, Any]:
        names = [n for n in self.args.phases.split(",") if n]
        faults = [self._fault(n) for n in names]
        await self.redis.start()
        await asyncio.gather(*(p.start() for p in self.procs))
        self.up = {p.url for p in self.procs}
        runners: list[asyncio.Task[None]] = []
        started = time.monotonic()
        for n, user in enumerate(self.users):
            runners.append(asyncio.create_task(user.run(self.stopping)))
            if n % 10 == 9:
                await asyncio.sleep(0.2)
        helpers = [
            asyncio.create_task(self._churn()),
            asyncio.create_task(
                rest_bot(
                    self.ledger,
                    self.pick_url,
                    sorted({r for u in self.users for r in u.rooms}),
                    API_KEY,
                    self.args.bot_rate,
                    self.stopping,
                    random.Random(self.args.seed + 1),
                )
            ),
        ]
        while sum(u.steady for u in self.users) < 0.9 * len(self.users):
            if time.monotonic() - started > 30:
                raise RuntimeError("users could not connect within 30 s")
            await asyncio.sleep(0.2)
        length = self.args.minutes * 60 / len(names)
        seen: dict[str, int] = {}
        for name, fault in zip(names, faults, strict=True):
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}-{seen[name]}"
            phase = Phase(label, now_ms())
            self.phases.append(phase)
            end = time.monotonic() + length
            print(f"phase {label} ({length:.0f} s)", flush=True)
            if fault is not None:
                await asyncio.sleep(length * CALM_BEFORE)
                await fault(phase)
                for event in phase.events:
                    print(f"    {event}", flush=True)
            await asyncio.sleep(max(0.0, end - time.monotonic()))
        print("settling, then every user catches up once more", flush=True)
        self.stopping.set()
        for helper in helpers:
            helper.cancel()
        await asyncio.wait(runners, timeout=20)
        await asyncio.sleep(2)
        sem = asyncio.Semaphore(16)

        async def final(user: SoakUser) -> bool:
            async with sem:
                return await user.final()

        finals = await asyncio.gather(*(final(u) for u in self.users))
        if not all(finals):
            self.notes.append(f"{finals.count(False)} users could not catch up at the end")
        self.phases[-1].end = now_ms()
        self.epochs[-1].store = await read_store(self.redis.url)
        for user in self.users:
            await user.stop()
        return self._report()

    def _report(self) -> dict[str, Any]:
        counts = account(self.ledger, self.users, self.phases, self.epochs)
        ledger = self.ledger
        if len(self.epochs) > 1:
            self.notes.append(
                "Redis was killed with no persistence: messages stamped before the kill are "
                "judged against a snapshot read just before it (acks that came in while it "
                "was read are not judged); a new accounting epoch starts at the restart."
            )
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": sys.argv[1:],
            "config": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()},
                "server_env": {k: v for k, v in self.env.items() if k != "CHAT_API_KEY"},
                "redis_down_s": REDIS_DOWN,
                "redis_frozen_s": REDIS_FROZEN,
            },
            "phases": [
                {"name": p.name, "start_ms": round(p.start), "events": p.events}
                for p in self.phases
            ],
            "epochs": [
                {
                    "start_ms": round(e.start),
                    "end_ms": None if math.isinf(e.end) else round(e.end),
                    "stored": sum(len(c) for c in e.store.values()),
                }
                for e in self.epochs
            ],
            "counts": counts["phases"],
            "samples": counts["samples"],
            "totals": {
                "acks_not_judged": counts["acks_not_judged"],
                "owed_deliveries": counts["owed_deliveries"],
                "unknown_or_unanswered_sends": counts["unknown_or_unanswered_sends"],
                "of_which_stored": counts["unknown_or_unanswered_sends_stored"],
                "live_deliveries": ledger.deliveries,
                "connects": ledger.connects,
                "connect_failures": ledger.connect_failures,
                "join_failures": ledger.join_failures,
                "catchup_failures": ledger.catchup_failures,
                "resync_events": ledger.resyncs,
                "unrecovered_joins": ledger.unrecovered,
                "sends_not_sent": ledger.not_sent,
            },
            "exit_codes": {p.name: p.exit_codes for p in self.procs},
            "notes": self.notes,
            "logdir": str(self.logdir),
        }

    async def close(self) -> None:
        self.stopping.set()
        for user in self.users:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(user.stop(), 5)
        for proc in self.procs:
            proc.stop()
        self.redis.stop()
        stop_all()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run one soak and return its report (the processes are gone when this returns)."""
    soak = Soak(args)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await soak.run()
    finally:
        await soak.close()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


def print_report(report: dict[str, Any]) -> None:
    print()
    print(table(report["counts"]))
    print()
    for note in report["notes"]:
        print(f"note: {note}")
    totals = report["totals"]
    print(
        f"{totals['live_deliveries']} live deliveries, {totals['connects']} connections, "
        f"{totals['resync_events']} resync events, {totals['owed_deliveries']} owed deliveries "
        f"checked; {totals['of_which_stored']} of {totals['unknown_or_unanswered_sends']} sends "
        "with an unknown outcome or no answer were stored."
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every process the soak started is stopped", file=sys.stderr)
        return 130
    out: Path = args.out or RESULTS / time.strftime("soak-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"raw results: {out}; server logs: {report['logdir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
