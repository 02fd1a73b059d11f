"""Connection-heavy scenarios: handshake rate and cost, idle memory with rooms, reconnect storms.

Every client here does what a browser does on arrival: a WebSocket upgrade,
the Socket.IO CONNECT with its ``auth`` (a username, or a token in token
mode) and a ``join`` of one room, and then stays connected. ``in_flight``
handshakes run at once; the rest wait their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.loadgen import Client, connect, gather_clients
from bench.servers import cpu_seconds, rss_bytes, settle

#: Seconds a reconnect storm may take before the bench gives up on it.
STORM_LIMIT = 90.0
#: Seconds a refused reconnect waits (times 1 to 2, at random) before trying again.
RETRY_DELAY = 0.1


def raise_file_limit(want: int) -> int:
    """Raise this process's RLIMIT_NOFILE towards ``want`` (children inherit it); the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, want)
    for new_hard in (max(hard, target), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, new_hard), new_hard))
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def room_of(i: int, rooms: int) -> str:
    return f"room{i % rooms}"


async def _handshake(port: int, auth: dict[str, Any], room: str, since: str | None) -> Client:
    """Connect, authenticate and join ``room``; the join's ack must say ok."""
    client = await connect(port, auth)
    payload: dict[str, Any] = {"room": room}
    if since is not None:
        payload["since"] = since
    try:
        ack = await client.call("join", payload)
    except BaseException:
        client.close()
        raise
    client.join_ack = ack
    if not (isinstance(ack, dict) and ack.get("ok")):
        client.close()
        raise RuntimeError(f"join refused: {ack}")
    return client


async def _wave(
    ports: Sequence[int],
    auths: Sequence[dict[str, Any]],
    rooms: int,
    in_flight: int,
) -> list[Client]:
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> Client:
        async with gate:
            return await _handshake(ports[i % len(ports)], auths[i], room_of(i, rooms), None)

    return await gather_clients([one(i) for i in range(len(auths))], "handshakes")


async def handshakes(
    ports: Sequence[int],
    server_pids: Callable[[], list[int]],
    *,
    auths: Sequence[dict[str, Any]],
    rooms: int = 50,
    in_flight: int = 100,
) -> dict[str, Any]:
    """Connect + auth + join for every entry of ``auths``: rate, server CPU, memory.

    The connections stay open until the server has settled, so the RSS
    growth of the server's process tree over them is the idle memory of a
    connection with one room joined. Then all of them close at once, and the
    server's CPU until it is quiet again is the cost of their disconnects.
    """
    pids = server_pids()
    await settle(pids)
    rss0, cpu0, t0 = rss_bytes(pids), cpu_seconds(pids), time.monotonic()
    clients = await _wave(ports, auths, rooms, in_flight)
    wall = time.monotonic() - t0
    try:
        pids = server_pids()
        await settle(pids)
        cpu = cpu_seconds(pids) - cpu0
        await asyncio.sleep(0.5)
        rss = rss_bytes(server_pids()) - rss0
    finally:
        closing = cpu_seconds(server_pids())
        for c in clients:
            c.close()
        # Thousands of leaves (each a presence event to the room) take a
        # while; the next scenario must not start inside them.
        await settle(server_pids())
        closed = cpu_seconds(server_pids()) - closing
    n = len(auths)
    return {
        "connections": n,
        "rooms": rooms,
        "in_flight": in_flight,
        "wall_s": wall,
        "connects_per_s": n / wall,
        "server_cpu_s": cpu,
        "cpu_ms_per_conn": cpu / n * 1000,
        "cpu_ms_per_disconnect": closed / n * 1000,
        "rss_growth_kib": rss / 1024,
        "kib_per_conn": rss / 1024 / n,
        "file_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def _last_id(ack: Any) -> str | None:
    history = ack.get("history") if isinstance(ack, dict) else None
    if isinstance(history, list) and history and isinstance(history[-1], dict):
        value = history[-1].get("id")
        return value if isinstance(value, str) else None
    return None


async def reconnect_storm(
    ports: Sequence[int],
    server_pids: Callable[[], list[int]],
    restart: Callable[[], Awaitable[float]],
    *,
    auths: Sequence[dict[str, Any]],
    rooms: int = 50,
    in_flight: int = 100,
    with_since: bool = True,
) -> dict[str, Any]:
    """Connect everyone, restart the server, and time until everyone is back in its room.

    ``restart`` SIGTERMs every server process, waits for it to exit, starts a
    new one on the same port and returns the ``time.monotonic()`` at which the
    new one answered ``/healthz``. Every client reconnects as soon as its
    connection ends, retrying every 0.1 to 0.2 s while it is refused, at most
    ``in_flight`` handshakes at once, and re-joins its room with ``since`` =
    the last id it holds (``with_since``; Node's baseline keeps no history).
    """
    clients = await _wave(ports, auths, rooms, in_flight)
    last: dict[str, str | None] = {}
    for i, c in enumerate(clients[:rooms]):  # one message per room, so `since` has an id
        room = room_of(i, rooms)
        ack = await c.call("message", {"room": room, "text": "before the restart"})
        last[room] = ack.get("id") if isinstance(ack, dict) else None
    since = [
        (last.get(room_of(i, rooms)) or _last_id(c.join_ack)) if with_since else None
        for i, c in enumerate(clients)
    ]
    gate = asyncio.Semaphore(in_flight)
    counts = {"unavailable": 0, "refused": 0, "errors": 0, "recovered": 0}
    done_at: list[float] = []
    peak = [0]
    back: list[Client] = []

    async def come_back(i: int, old: Client) -> None:
        await old.closed
        deadline = time.monotonic() + STORM_LIMIT
        while time.monotonic() < deadline:
            async with gate:
                try:
                    c = await _handshake(
                        ports[i % len(ports)], auths[i], room_of(i, rooms), since[i]
                    )
                except (OSError, TimeoutError):  # ConnectionError is an OSError
                    counts["refused"] += 1
                    c = None
                except RuntimeError as exc:
                    text = str(exc)
                    counts["unavailable" if "unavailable" in text else "errors"] += 1
                    c = None
            if c is not None:
                back.append(c)
                if c.join_ack.get("recovered"):
                    counts["recovered"] += 1
                done_at.append(time.monotonic())
                return
            await asyncio.sleep(RETRY_DELAY * (1 + random.random()))

    async def watch_memory() -> None:
        while True:
            peak[0] = max(peak[0], rss_bytes(server_pids()))
            await asyncio.sleep(0.05)

    returning = [asyncio.create_task(come_back(i, c)) for i, c in enumerate(clients)]
    watcher = asyncio.create_task(watch_memory())
    t0 = time.monotonic()
    try:
        listening = await restart()
        await asyncio.wait_for(asyncio.gather(*returning), STORM_LIMIT)
        peak[0] = max(peak[0], rss_bytes(server_pids()))
    finally:
        watcher.cancel()
        for task in returning:
            task.cancel()
        for c in clients + back:
            c.close()
        await asyncio.sleep(0.2)
    finished = max(done_at) if done_at else time.monotonic()
    return {
        "connections": len(auths),
        "rooms": rooms,
        "in_flight": in_flight,
        "with_since": with_since,
        "back": len(back),
        "all_back_s": finished - t0,
        "back_after_listening_s": finished - listening,
        # The new process starts taking handshakes before /healthz is answered
        # among them, so this span, first client back to last, is the storm's own.
        "first_to_last_s": finished - min(done_at, default=finished),
        "restart_s": listening - t0,
        "peak_rss_mib": peak[0] / 2**20,
        "unavailable": counts["unavailable"],
        "join_errors": counts["errors"],
        "refused_attempts": counts["refused"],
        "recovered": counts["recovered"],
    }
