"""A reconnect wave is never answered `unavailable` while Redis is healthy.

500 real clients on one process re-join their rooms all at once, as they do
after a `resync` and after a restart. redis-py's default pool refused the
101st concurrent call; the server's pool makes a burst wait for a connection
instead (CHAT_REDIS_POOL_SIZE, CHAT_REDIS_POOL_WAIT).
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from typing import Any

import aiohttp
import pytest

from tests.support.chat import expect_ok, join, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartProcesses
from tests.support.health import metric
from tests.support.redis import kill_subscriptions

pytestmark = pytest.mark.redis

CLIENTS = 500
ROOMS = 50


async def _connect_all(connect: Connect, url: str, prefix: str, **kw: Any) -> list[ChatClient]:
    clients: list[ChatClient] = []
    for start in range(0, CLIENTS, 50):
        batch = [connect(url, f"{prefix}{n}", **kw) for n in range(start, start + 50)]
        clients.extend(await asyncio.gather(*batch))
    return clients


async def _rejoin_all(clients: list[ChatClient], rooms: list[str]) -> tuple[list[float], int]:
    """Every client re-joins its room at once; returns join times and `unavailable` count."""

    async def rejoin(n: int, client: ChatClient) -> tuple[float, Any]:
        started = time.perf_counter()
        ack = await client.call("join", {"room": rooms[n % ROOMS]}, timeout=30)
        return time.perf_counter() - started, ack

    results = await asyncio.gather(*(rejoin(n, c) for n, c in enumerate(clients)))
    refused = sum(1 for _, ack in results if not ack.get("ok"))
    assert all(ack.get("ok") or ack["error"]["code"] == "unavailable" for _, ack in results)
    return [seconds for seconds, _ in results], refused


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[wave] {line}")


async def test_500_clients_rejoining_after_a_resync_are_never_refused(
    server_processes: StartProcesses,
    connect: Connect,
    redis_url: str,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (one,) = await server_processes(1)
    prefix, rooms = unique("w"), [unique("room") for _ in range(ROOMS)]
    clients = await _connect_all(connect, one.url, prefix)
    for n, client in enumerate(clients):
        await join(client, rooms[n % ROOMS])
    await kill_subscriptions(redis_url)
    await asyncio.gather(*(c.next("resync", timeout=15) for c in clients))
    times, refused = await _rejoin_all(clients, rooms)
    assert refused == 0
    waits = await metric(http, one.url, "chat_redis_pool_wait_seconds_count")
    assert waits is not None and waits > 0
    _report(
        capsys,
        f"{CLIENTS} re-joins after resync: 0 unavailable,"
        f" p50 {statistics.median(times) * 1000:.0f} ms, p99 {_p99(times) * 1000:.0f} ms",
    )


async def test_500_clients_coming_back_to_a_restarted_process_are_never_refused(
    server_processes: StartProcesses, connect: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    (one,) = await server_processes(1)
    prefix, rooms = unique("r"), [unique("room") for _ in range(ROOMS)]
    clients = await _connect_all(connect, one.url, prefix)
    last: dict[int, str] = {}
    for n, client in enumerate(clients):
        await join(client, rooms[n % ROOMS])
    for room in rooms:
        sender = clients[rooms.index(room)]
        last[rooms.index(room)] = expect_ok(
            await sender.call("message", {"room": room, "text": "before"})
        )["id"]
    await asyncio.to_thread(one.stop, 10.0, signal.SIGTERM)
    await asyncio.to_thread(one.start)
    started = time.perf_counter()
    fresh = await _connect_all(connect, one.url, prefix)

    async def come_back(n: int, client: ChatClient) -> tuple[float, Any]:
        payload = {"room": rooms[n % ROOMS], "since": last[n % ROOMS]}
        asked = time.perf_counter()
        ack = await client.call("join", payload, timeout=30)
        return time.perf_counter() - asked, ack

    results = await asyncio.gather(*(come_back(n, c) for n, c in enumerate(fresh)))
    back = time.perf_counter() - started
    assert [ack for _, ack in results if not ack.get("ok")] == []
    times = [seconds for seconds, _ in results]
    _report(
        capsys,
        f"{CLIENTS} clients back after a restart in {back:.1f} s, 0 unavailable,"
        f" join p99 {_p99(times) * 1000:.0f} ms",
    )
