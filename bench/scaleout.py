"""The scale-out scenario: many rooms over several processes, each room's members on one or two.

With per-room routing a process hears only the rooms it holds members of,
so the CPU per delivery should stay flat as processes are added; with one
channel for everything (``CHAT_BUS_ROUTING=single``) every process decodes
every message, so it grows with the number of processes.

Room ``r`` lives on process ``r % P``; every other room also has half its
members on the next process. Each room has one sender, on its home process,
paced so that the load is the same whatever ``P`` is.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from bench.loadgen import Client, connect
from bench.servers import (
    API_KEY,
    ServerSet,
    cpu_seconds,
    new_logdir,
    node_available,
    redis_flush,
    settle,
    start_redis,
    start_redis_cluster,
)

__all__ = ["placement", "run", "scale_out", "table"]


def placement(rooms: int, members: int, processes: int) -> list[list[int]]:
    """For each room, the process index of each of its members (its sender first)."""
    out = []
    for room in range(rooms):
        home = room % processes
        other = (home + 1) % processes if room % 2 and processes > 1 else home
        out.append([home if i % 2 == 0 else other for i in range(members)])
    return out


#: The counter of messages a process's bus subscription brought.
HEARD = "chat_bus_messages_received_total"


def _heard(port: int) -> float:
    """``HEARD`` of the process on ``port``, from its ``/metrics``."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(HEARD + " "):
                return float(line.split()[1])
    return 0.0


async def heard(ports: Sequence[int]) -> list[float]:
    """What each process's subscription brought so far."""
    return await asyncio.gather(*(asyncio.to_thread(_heard, port) for port in ports))


async def _join(client: Client, room: str) -> None:
    ack = await client.call("join", {"room": room})
    if not ack.get("ok"):
        raise RuntimeError(f"join refused: {ack}")


async def _paced(
    client: Client, room: str, index: int, rate: float, pad: str, state: dict[str, Any]
) -> None:
    """Send ``room``'s messages at ``rate`` per second until ``state['running']`` is False."""
    loop = asyncio.get_running_loop()
    interval, next_at = 1.0 / rate, loop.time()

    def acked(ack: Any) -> None:
        if not (isinstance(ack, list) and ack and isinstance(ack[0], dict) and ack[0].get("ok")):
            state["errors"] += 1

    while state["running"]:
        seq = state["sent"][index]
        state["sent"][index] = seq + 1
        text = f"b|{index}|{seq}|{time.monotonic_ns()}|{pad}"
        client.emit("message", {"room": room, "text": text}, acked)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def scale_out(
    ports: Sequence[int],
    server_pids: Callable[[], list[int]],
    redis_pids: Sequence[int],
    *,
    rooms: int = 40,
    members: int = 10,
    rate: float = 400.0,
    duration: float = 10.0,
    warmup: float = 2.0,
    text_size: int = 64,
    tag: str = "so",
    metrics: bool = True,
) -> dict[str, Any]:
    """Run the scenario on ``ports`` (one per process); figures per delivery.

    ``rate`` is messages per second over all rooms; ``members`` counts each
    room's sender. With ``metrics``, the servers' ``/metrics`` say how many
    processes heard each message (ours only).
    """
    where = placement(rooms, members, len(ports))
    names = [f"{tag}r{r}" for r in range(rooms)]
    clients: list[list[Client]] = []
    try:
        for r, procs in enumerate(where):
            clients.append(
                [
                    await connect(ports[p], {"username": f"{tag}{r}m{i}"}, rooms)
                    for i, p in enumerate(procs)
                ]
            )
            await asyncio.gather(*(_join(c, names[r]) for c in clients[r]))
        await settle(server_pids())
        pad = "x" * max(0, text_size - 32)
        state: dict[str, Any] = {"running": True, "sent": [0] * rooms, "errors": 0}
        senders = [
            asyncio.create_task(_paced(clients[r][0], names[r], r, rate / rooms, pad, state))
            for r in range(rooms)
        ]
        everyone = [c for room in clients for c in room]
        await asyncio.sleep(warmup)
        pids = server_pids()
        h0, m0 = await heard(ports) if metrics else [], sum(state["sent"])
        d0 = sum(c.deliveries for c in everyone)
        s0, r0, t0 = cpu_seconds(pids), cpu_seconds(redis_pids), time.monotonic()
        await asyncio.sleep(duration)
        d1 = sum(c.deliveries for c in everyone)
        s1, r1, t1 = cpu_seconds(pids), cpu_seconds(redis_pids), time.monotonic()
        h1, m1 = await heard(ports) if metrics else [], sum(state["sent"])
        state["running"] = False
        await asyncio.gather(*senders)
        lost = await _lost(clients, state["sent"])
        deliveries = d1 - d0
        return {
            "processes": len(ports),
            "rooms": rooms,
            "members": members,
            "rate": rate,
            "duration": t1 - t0,
            "deliveries": deliveries,
            "deliveries_per_s": deliveries / (t1 - t0),
            "server_cpu_s": s1 - s0,
            "redis_cpu_s": r1 - r0,
            "server_cpu_s_per_100k": (s1 - s0) / deliveries * 100_000 if deliveries else None,
            "redis_cpu_s_per_100k": (r1 - r0) / deliveries * 100_000 if deliveries else None,
            # Bus messages the processes received per message sent: how many
            # processes paid to hear each one.
            "heard_per_message": (sum(h1) - sum(h0)) / (m1 - m0) if metrics and m1 > m0 else None,
            "ack_errors": state["errors"],
            "lost": lost,
            "reordered": sum(c.reordered for c in everyone),
        }
    finally:
        for room in clients:
            for c in room:
                c.close()
        await asyncio.sleep(0.2)


async def _lost(clients: list[list[Client]], sent: list[int], timeout: float = 20.0) -> int:  # noqa: ASYNC109
    """Wait for every member to hold its room's messages; how many never came."""
    deadline = time.monotonic() + timeout

    def missing() -> int:
        return sum(
            max(0, sent[r] - c.counts[r])
            for r, room in enumerate(clients)
            for c in room
            if not c.closed.done()
        )

    while time.monotonic() < deadline:
        if not missing():
            break
        await asyncio.sleep(0.05)
    return missing()


#: The rows of one process count: server kind, routing, and its environment.
#: Ours as it is, ours with the single-channel design, ours on a 3-master
#: Redis Cluster (sharded pub/sub), and Node's socket.io with its sharded
#: Redis adapter (a channel per room, SPUBLISH/SSUBSCRIBE) on one Redis.
ROWS = (
    ("ours", "rooms", {"CHAT_BUS_ROUTING": "rooms"}),
    ("ours", "single", {"CHAT_BUS_ROUTING": "single"}),
    ("ours", "cluster", {"CHAT_BUS_ROUTING": "rooms"}),
    ("node", "sharded", {"REDIS_ADAPTER": "sharded"}),
)


async def run(
    processes: Sequence[int],
    *,
    kinds: Sequence[str] = ("ours", "node"),
    quick: bool,
    duration: float | None,
    warmup: float | None,
) -> dict[str, Any]:
    """Every process count with each row of ``kinds``, over one private Redis; the report."""
    logdir = new_logdir()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "scenario": "scaleout",
        "rows": [],
        "logdir": str(logdir),
    }
    figures = {
        "rooms": 40,
        "members": 4 if quick else 10,
        "rate": 100.0 if quick else 400.0,
        "duration": duration if duration is not None else (2.0 if quick else 10.0),
        "warmup": warmup if warmup is not None else (0.5 if quick else 2.0),
    }
    report["config"] = figures
    rows = [row for row in ROWS if row[0] in kinds]
    if "node" in kinds and (reason := node_available()) is not None:
        report["notes"] = [f"Node skipped: {reason}"]
        print(f"note: Node skipped: {reason}", flush=True)
        rows = [row for row in rows if row[0] != "node"]
    if shutil.which("redis-cli") is None:
        report.setdefault("notes", []).append("cluster row skipped: redis-cli is not installed")
        rows = [row for row in rows if row[1] != "cluster"]
    redis, redis_url = start_redis(logdir)
    cluster = start_redis_cluster(logdir) if any(r[1] == "cluster" for r in rows) else None
    try:
        for nproc in processes:
            for kind, routing, env in rows:
                url, redis_pids = redis_url, [redis.popen.pid]
                if routing == "cluster" and cluster is not None:
                    cluster.flush()
                    url, redis_pids = cluster.url, cluster.pids
                redis_flush(redis_url)
                servers = ServerSet(kind, nproc, url, logdir, extra_env=env)
                print(f"{kind}, {nproc} processes, routing {routing}:", flush=True)
                servers.start()
                try:
                    row = await scale_out(
                        servers.ports,
                        servers.pids,
                        redis_pids,
                        tag=f"{routing[:2]}{nproc}",
                        metrics=kind == "ours",
                        **figures,  # type: ignore[arg-type]
                    )
                finally:
                    servers.stop()
                row["server"], row["routing"] = kind, routing
                print(f"    {_line(row)}", flush=True)
                report["rows"].append(row)
    finally:
        redis.stop()
        if cluster is not None:
            cluster.stop()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return report


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['deliveries_per_s']:.0f} deliveries/s, "
        f"servers {row['server_cpu_s_per_100k'] or 0:.1f} CPU s/100k, "
        f"Redis {row['redis_cpu_s_per_100k'] or 0:.1f} CPU s/100k, "
        f"heard by {_fmt(row['heard_per_message'])} processes per message, "
        f"lost {row['lost']}, reordered {row['reordered']}, ack errors {row['ack_errors']}"
    )


def table(report: dict[str, Any]) -> str:
    """The report as one table: a row per process count and routing."""
    lines = [
        "| processes | server | routing | deliveries/s | servers CPU s / 100k deliveries "
        "| Redis CPU s / 100k deliveries | processes hearing each message | lost | reordered |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['processes']} | {row['server']} | {row['routing']} "
            f"| {row['deliveries_per_s']:.0f} "
            f"| {row['server_cpu_s_per_100k'] or 0:.1f} | {row['redis_cpu_s_per_100k'] or 0:.1f} "
            f"| {_fmt(row['heard_per_message'])} | {row['lost']} | {row['reordered']} |"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
