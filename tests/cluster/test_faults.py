"""Faults: Redis killed, frozen or dropping subscribers, late Redis, SIGTERM, SIGKILL.

Every test runs real server processes against a Redis of its own, breaks
something, and measures how long the chat takes to recover; the figures are
printed (run with ``-s``) for docs/operations.md.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp
import pytest

from tests.support.chat import alice_and_bob_in_a_room, join, unique
from tests.support.faults import assert_recovered, health, live_flow, report, until
from tests.support.fixtures import Connect, StartProcesses
from tests.support.process import ServerProcess
from tests.support.redis import RedisServer, kill_subscriptions, redis_binary
from tests.support.settings import API_KEY

pytestmark = pytest.mark.redis

AUTH = {"Authorization": f"Bearer {API_KEY}"}
#: Presence expires quickly, so that the SIGKILL test need not wait 45 s.
FAST_PRESENCE = {"CHAT_PRESENCE_TTL": "3"}


@pytest.fixture
def own_redis() -> RedisServer:
    if redis_binary() is None:
        pytest.skip("redis-server is not on PATH")
    return RedisServer()


# -- Redis killed ---------------------------------------------------------------------


async def test_redis_killed_for_a_few_seconds_the_chat_recovers_without_losing_acked_messages(
    server_processes: StartProcesses,
    fresh_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one, two = await server_processes(2, redis_url=fresh_redis.url, env=FAST_PRESENCE)
    room = unique("room")
    alice, carol = await connect(one.url, "alice"), await connect(one.url, "carol")
    bob = await connect(two.url, "bob")
    for client in (alice, carol, bob):
        await join(client, room)
    first = await alice.call("message", {"room": room, "text": "before"})
    assert (await bob.next("message"))["id"] == first["id"]

    fresh_redis.kill()
    killed = time.monotonic()

    async def both_down() -> bool:
        return [(await health(http, p.url))[0] for p in (one, two)] == [503, 503]

    detect = await until(both_down, 5)
    # Within a process the chat goes on where it needs no storage ...
    carol.pending("typing")
    assert (await alice.call("typing", {"room": room}))["ok"] is True
    assert (await carol.next("typing", timeout=3))["user"] == "alice"
    # ... and what would need storage is refused at once, never acked unstored.
    asked = time.monotonic()
    refused = await alice.call("message", {"room": room, "text": "during"})
    answer_time = time.monotonic() - asked
    assert refused["ok"] is False
    assert refused["error"]["code"] == "unavailable"
    assert answer_time < 3
    await asyncio.sleep(max(0.0, 3 - (time.monotonic() - killed)))

    fresh_redis.start()
    back = time.monotonic()

    async def both_up() -> bool:
        return [(await health(http, p.url))[0] for p in (one, two)] == [200, 200]

    healthy = await until(both_up, 10)
    _, acked = await live_flow(alice, bob, room)
    resumed = time.monotonic() - back
    assert resumed < 10
    assert one.running and two.running
    await assert_recovered(bob, room, first["id"], acked)
    report(
        capsys,
        f"Redis killed 3 s: /healthz down after {detect:.1f} s; refusal answered in"
        f" {answer_time:.2f} s; after restart /healthz ok in {healthy:.1f} s, cross-process"
        f" delivery resumed {resumed:.1f} s after Redis came back; {len(acked)} acked, none lost",
    )


async def test_a_process_tells_its_clients_to_resync_after_its_subscription_comes_back(
    server_processes: StartProcesses, fresh_redis: RedisServer, connect: Connect
) -> None:
    (one,) = await server_processes(1, redis_url=fresh_redis.url)
    alice = await connect(one.url, "alice")
    fresh_redis.kill()
    await asyncio.sleep(1)
    fresh_redis.start()
    assert await alice.next("resync", timeout=10) == {"reason": "redis"}


# -- Redis frozen --------------------------------------------------------------------


async def test_a_frozen_redis_never_hangs_a_handler(
    server_processes: StartProcesses,
    fresh_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one, two = await server_processes(2, redis_url=fresh_redis.url)
    room = unique("room")
    alice, carol = await connect(one.url, "alice"), await connect(one.url, "carol")
    bob = await connect(two.url, "bob")
    for client in (alice, carol, bob):
        await join(client, room)
    first = await alice.call("message", {"room": room, "text": "before"})
    fresh_redis.pause()
    try:
        timings = {}
        for event, payload in (
            ("message", {"room": room, "text": "frozen"}),
            ("join", {"room": unique("other")}),
            ("history", {"room": room}),
        ):
            asked = time.monotonic()
            ack = await alice.call(event, payload, timeout=10)
            timings[event] = time.monotonic() - asked
            assert ack["ok"] is False, (event, ack)
            assert ack["error"]["code"] == "unavailable"
        assert max(timings.values()) < 5, timings
        assert (await alice.call("typing", {"room": room}, timeout=5))["ok"] is True
        assert (await carol.next("typing", timeout=3))["user"] == "alice"
        asked = time.monotonic()
        async with http.post(
            f"{one.url}/api/emit", json={"room": room, "text": "bot"}, headers=AUTH
        ) as resp:
            assert resp.status == 503
        rest_time = time.monotonic() - asked
        assert rest_time < 5
        status, body = await health(http, one.url)
        assert (status, body["redis"]) == (503, "down")
    finally:
        fresh_redis.resume()
    resumed = time.monotonic()
    _, acked = await live_flow(alice, bob, room)
    back = time.monotonic() - resumed
    assert back < 10
    await assert_recovered(bob, room, first["id"], acked)
    report(
        capsys,
        "Redis frozen (SIGSTOP): acks "
        + ", ".join(f"{e} {t:.2f} s" for e, t in timings.items())
        + f", REST 503 in {rest_time:.2f} s; after SIGCONT cross-process delivery"
        f" back in {back:.1f} s",
    )


# -- pub/sub subscription dropped ---------------------------------------------------------


async def test_a_subscription_killed_by_redis_is_made_again(
    server_processes: StartProcesses,
    fresh_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one, two = await server_processes(2, redis_url=fresh_redis.url)
    alice, bob, room, first = await alice_and_bob_in_a_room((one.url, two.url), connect)
    killed = await kill_subscriptions(fresh_redis.url)
    assert killed >= 2
    flow, acked = await live_flow(alice, bob, room)
    assert flow < 10
    await assert_recovered(bob, room, first["id"], acked)
    async with http.get(f"{two.url}/metrics", headers=AUTH) as resp:
        text = await resp.text()
    assert "chat_redis_resubscribes_total 1.0" in text
    report(capsys, f"pub/sub clients killed: cross-process delivery back in {flow:.1f} s")


# -- Redis appears after the processes ------------------------------------------------------


async def test_processes_started_before_redis_join_the_chat_once_it_appears(
    own_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"REDIS_URL": own_redis.url, "CHAT_API_KEY": API_KEY, "LOG_LEVEL": "ERROR"}
    procs = [ServerProcess(env=env), ServerProcess(env=env)]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            assert (await health(http, proc.url))[0] == 503
        own_redis.start()
        appeared = time.monotonic()

        async def all_up() -> bool:
            return [(await health(http, p.url))[0] for p in procs] == [200, 200]

        healthy = await until(all_up, 10)
        room = unique("room")
        alice, bob = await connect(procs[0].url, "alice"), await connect(procs[1].url, "bob")
        await join(alice, room)
        await join(bob, room)
        await live_flow(alice, bob, room)
        joined = time.monotonic() - appeared
        assert joined < 10
    finally:
        for proc in procs:
            proc.stop(signum=signal.SIGINT)
        own_redis.close()
    report(
        capsys,
        f"Redis started after the processes: /healthz ok in {healthy:.1f} s,"
        f" cross-process chat {joined:.1f} s after Redis appeared",
    )


# -- SIGTERM -----------------------------------------------------------------------------


@pytest.fixture
def lone_process() -> Any:
    proc = ServerProcess(env={"CHAT_API_KEY": API_KEY, "LOG_LEVEL": "WARNING"})
    proc.start()
    yield proc
    proc.stop(signum=signal.SIGINT)


async def test_sigterm_drains_then_exits_0_within_10_s(
    lone_process: ServerProcess,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = await connect(lone_process.url, "alice")
    lone_process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    await alice.wait_disconnected(5)
    closed = time.monotonic() - sent
    code = await asyncio.to_thread(lone_process.wait, 10)
    exited = time.monotonic() - sent
    assert code == 0
    assert exited < 10
    report(capsys, f"SIGTERM: connections closed in {closed:.2f} s, exit 0 after {exited:.1f} s")


async def test_while_draining_healthz_is_503_draining_and_rest_is_503(
    lone_process: ServerProcess, http: aiohttp.ClientSession
) -> None:
    lone_process.send_signal(signal.SIGTERM)

    async def draining() -> bool:
        return await health(http, lone_process.url) == (503, {"status": "draining"})

    await until(draining, 2)
    async with http.post(
        f"{lone_process.url}/api/emit", json={"room": "lobby", "text": "hi"}, headers=AUTH
    ) as resp:
        body = await resp.json()
        assert resp.status == 503
    assert body["ok"] is False
    assert body["error"]["code"] == "draining"


async def test_while_draining_new_handshakes_are_refused(
    lone_process: ServerProcess, http: aiohttp.ClientSession
) -> None:
    lone_process.send_signal(signal.SIGTERM)

    async def refused() -> bool:
        url = f"{lone_process.url}/socket.io/?EIO=4&transport=polling"
        async with http.get(url) as resp:
            return resp.status == 503

    await until(refused, 2)


async def test_sigterm_closes_connections_so_clients_reconnect_by_themselves(
    lone_process: ServerProcess, connect: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = await connect(
        lone_process.url,
        "alice",
        client_kwargs={
            "reconnection": True,
            "reconnection_delay": 0.2,
            "reconnection_delay_max": 1,
        },
    )
    await alice.next("welcome")
    lone_process.send_signal(signal.SIGTERM)
    reason = await alice.wait_disconnected(5)
    # a transport close, not the server's Socket.IO goodbye
    assert reason != "io server disconnect"
    assert reason != "server disconnect"
    await asyncio.to_thread(lone_process.wait, 10)
    await asyncio.to_thread(lone_process.start)
    restarted = time.monotonic()
    assert (await alice.next("welcome", timeout=10))["user"] == "alice"
    report(
        capsys,
        f"SIGTERM: client reconnected by itself {time.monotonic() - restarted:.1f} s"
        " after the process was back",
    )


# -- SIGKILL of one of two processes -------------------------------------------------------


async def test_users_of_a_killed_process_leave_members_and_reconnecting_keeps_history(
    server_processes: StartProcesses,
    fresh_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doomed, survivor = await server_processes(2, redis_url=fresh_redis.url, env=FAST_PRESENCE)
    room = unique("room")
    alice, carol = await connect(doomed.url, "alice"), await connect(doomed.url, "carol")
    bob = await connect(survivor.url, "bob")
    for client in (alice, carol, bob):
        await join(client, room)
    sent = [await alice.call("message", {"room": room, "text": f"m{i}"}) for i in range(5)]
    assert all(ack["ok"] for ack in sent)
    doomed.kill()
    killed = time.monotonic()

    async def gone() -> bool:
        async with http.get(f"{survivor.url}/api/rooms/{room}", headers=AUTH) as resp:
            members = (await resp.json())["members"]
        return "carol" not in members and "alice" not in members

    dropped = await until(gone, 60)
    assert dropped < 60
    again = await connect(survivor.url, "alice")
    ack = await join(again, room)
    assert [m["id"] for m in ack["history"]][-5:] == [a["id"] for a in sent]
    assert ack["members"] == ["alice", "bob"]
    report(
        capsys,
        f"SIGKILL of one process: its users left members {dropped:.1f} s later"
        " (CHAT_PRESENCE_TTL=3); reconnecting to the survivor kept all history",
    )
    del killed


async def test_a_user_who_leaves_during_a_redis_outage_does_not_linger_in_members(
    server_processes: StartProcesses,
    fresh_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
) -> None:
    (one,) = await server_processes(1, redis_url=fresh_redis.url, env=FAST_PRESENCE)
    rooms = [unique("room"), unique("room"), unique("room")]
    alice = await connect(one.url, "alice")
    for room in rooms:
        await join(alice, room)
    fresh_redis.kill()
    await alice.close()
    await asyncio.sleep(0.5)
    fresh_redis.start()

    async def members(room: str) -> list[str]:
        async with http.get(f"{one.url}/api/rooms/{room}", headers=AUTH) as resp:
            assert resp.status == 200
            result: list[str] = (await resp.json())["members"]
            return result

    # Longer than a presence refresh (a third of the TTL) and the TTL itself:
    # a process that still believed alice present would have put her back.
    await asyncio.sleep(4)
    for room in rooms:
        assert await members(room) == []


async def test_a_join_refused_during_a_redis_outage_leaves_no_trace_in_members(
    server_processes: StartProcesses,
    fresh_redis: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
) -> None:
    (one,) = await server_processes(1, redis_url=fresh_redis.url, env=FAST_PRESENCE)
    room = unique("room")
    alice = await connect(one.url, "alice")
    fresh_redis.kill()
    refused = await alice.call("join", {"room": room})
    assert refused["error"]["code"] == "unavailable"
    fresh_redis.start()
    await asyncio.sleep(2)  # more than a presence refresh (a third of the TTL)
    async with http.get(f"{one.url}/api/rooms/{room}", headers=AUTH) as resp:
        assert (await resp.json())["members"] == []
