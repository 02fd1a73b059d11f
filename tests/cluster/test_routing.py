"""Per-room routing: a process hears from the bus only its own rooms' and users' messages."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from typing import TypeAlias

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from chat_server.core.names import room_channel, user_channel
from chat_server.core.settings import RedisTarget
from chat_server.transport.bus import pubsub_channel
from chat_server.transport.routing import Channels
from tests.support.chat import expect_ok, join, unique
from tests.support.clients import ChatClient
from tests.support.cluster import RedisClusterServers
from tests.support.fixtures import Connect, StartProcesses
from tests.support.health import cpu_seconds, metric, wait_for
from tests.support.process import ServerProcess
from tests.support.redis import (
    RedisServer,
    kill_subscriptions,
    require_redis_binary,
    subscribers,
    wait_unsubscribed,
)
from tests.support.settings import API_KEY

ENV = {
    "CHAT_API_KEY": API_KEY,
    "CHAT_RATE_BURST": "100000",
    "CHAT_RATE_PER_SECOND": "100000",
    "CHAT_API_RATE_PER_SECOND": "100000",
    "LOG_LEVEL": "WARNING",
}
RECEIVED = "chat_bus_messages_received_total"

pytestmark = pytest.mark.redis

#: The module runs on a Redis of its own and on the session's Redis Cluster.
AnyServer: TypeAlias = RedisServer | RedisClusterServers
AnyClient: TypeAlias = aioredis.Redis | RedisCluster


@pytest.fixture(scope="module", params=["redis", "cluster"])
def redis(request: pytest.FixtureRequest) -> Iterator[RedisServer | RedisClusterServers]:
    """A Redis of the module's own, or the session's Redis Cluster."""
    if request.param == "cluster":
        yield request.getfixturevalue("redis_cluster")
        return
    require_redis_binary()
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def procs(redis: RedisServer | RedisClusterServers) -> Iterator[tuple[ServerProcess, ...]]:
    """Three processes on a Redis of their own; tests use fresh room and user names."""
    started = tuple(ServerProcess(env={**ENV, "REDIS_URL": redis.url}) for _ in range(3))
    try:
        for proc in started:
            proc.launch()
        for proc in started:
            proc.wait_ready()
        yield started
    finally:
        for proc in started:
            proc.stop(signum=signal.SIGINT)


@pytest.fixture
async def client(
    redis: RedisServer | RedisClusterServers,
) -> AsyncIterator[aioredis.Redis | RedisCluster]:
    target = RedisTarget.parse(redis.url)
    redis_client: aioredis.Redis | RedisCluster = (
        RedisCluster.from_url(target.url)
        if target.cluster
        else aioredis.Redis.from_url(target.url)
    )
    yield redis_client
    await redis_client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def channel_of(redis: RedisServer | RedisClusterServers, group: str) -> str:
    channel = Channels(pubsub_channel(redis.url)).of(group)
    assert channel is not None
    return channel


async def received(http: aiohttp.ClientSession, proc: ServerProcess) -> float:
    return await metric(http, proc.url, RECEIVED, api_key=API_KEY) or 0.0


async def settled(http: aiohttp.ClientSession, proc: ServerProcess) -> float:
    """The bus count of ``proc`` once it has held still for 0.5 s (at most 5 s).

    The earlier tests' clients leave as they close, and their presence events
    may still be on the way to a process that held them.
    """
    count = await received(http, proc)
    for _ in range(10):
        await asyncio.sleep(0.5)
        now = await received(http, proc)
        if now == count:
            break
        count = now
    return count


async def send_many(sender: ChatClient, room: str, count: int, batch: int = 50) -> list[str]:
    """Send ``count`` messages to ``room``, ``batch`` acks in flight at once; their ids."""
    ids: list[str] = []
    for start in range(0, count, batch):
        calls = [
            sender.call("message", {"room": room, "text": f"m{n}"})
            for n in range(start, min(count, start + batch))
        ]
        ids += [expect_ok(ack)["id"] for ack in await asyncio.gather(*calls)]
    return ids


async def drain(receiver: ChatClient, count: int, timeout: float = 60) -> list[str]:  # noqa: ASYNC109
    """Ids of the next ``count`` messages ``receiver`` gets."""
    ids: list[str] = []
    async with asyncio.timeout(timeout):
        while len(ids) < count:
            ids.append((await receiver.next("message", timeout=timeout))["id"])
    return ids


# -- subscriptions follow local members ---------------------------------------------------


async def test_a_room_channel_is_subscribed_once_per_process_holding_a_member(
    procs: tuple[ServerProcess, ...],
    redis: RedisServer | RedisClusterServers,
    client: aioredis.Redis | RedisCluster,
    connect: Connect,
) -> None:
    room = unique("room")
    channel = channel_of(redis, room_channel(room))
    assert await subscribers(client, channel) == 0
    await join(await connect(procs[0].url, unique("u")), room)
    assert await subscribers(client, channel) == 1  # confirmed before the ack
    await join(await connect(procs[0].url, unique("u")), room)
    assert await subscribers(client, channel) == 1
    await join(await connect(procs[1].url, unique("u")), room)
    assert await subscribers(client, channel) == 2


async def test_a_room_channel_stays_while_a_local_member_remains(
    procs: tuple[ServerProcess, ...],
    redis: RedisServer | RedisClusterServers,
    client: aioredis.Redis | RedisCluster,
    connect: Connect,
) -> None:
    room = unique("room")
    first, second = await connect(procs[0].url, unique("u")), await connect(procs[0].url, "x")
    await join(first, room)
    await join(second, room)
    expect_ok(await first.call("leave", {"room": room}))
    await asyncio.sleep(0.3)
    assert await subscribers(client, channel_of(redis, room_channel(room))) == 1


@pytest.mark.parametrize("way", ["leave", "disconnect"])
async def test_a_room_channel_goes_when_the_last_local_member_goes(
    procs: tuple[ServerProcess, ...],
    redis: RedisServer | RedisClusterServers,
    client: aioredis.Redis | RedisCluster,
    connect: Connect,
    way: str,
) -> None:
    room = unique("room")
    member = await connect(procs[0].url, unique("u"))
    await join(member, room)
    if way == "leave":
        expect_ok(await member.call("leave", {"room": room}))
    else:
        await member.close()
    await wait_unsubscribed(client, channel_of(redis, room_channel(room)))


async def test_a_users_channel_is_subscribed_while_the_user_is_connected(
    procs: tuple[ServerProcess, ...],
    redis: RedisServer | RedisClusterServers,
    client: aioredis.Redis | RedisCluster,
    connect: Connect,
) -> None:
    alice = unique("alice")
    channel = channel_of(redis, user_channel(alice))
    connection = await connect(procs[1].url, alice)
    assert await subscribers(client, channel) == 1
    await connection.close()
    await wait_unsubscribed(client, channel)


# -- what a process hears -----------------------------------------------------------------


async def test_a_rooms_traffic_reaches_its_members_on_two_processes_and_not_the_third(
    procs: tuple[ServerProcess, ...], connect: Connect, http: aiohttp.ClientSession
) -> None:
    room = unique("room")
    await connect(procs[2].url, unique("bystander"))
    before = await settled(http, procs[2])
    on_a, on_b = await connect(procs[0].url, unique("u")), await connect(procs[1].url, "v")
    await join(on_a, room)  # presence of the joins goes on the room's channel too
    await join(on_b, room)
    await on_b.emit("typing", {"room": room})
    await on_a.next("typing")
    ids = await send_many(on_a, room, 100)
    assert await drain(on_a, 100) == ids
    assert await drain(on_b, 100) == ids
    assert await received(http, procs[2]) == before


async def test_a_connection_opening_on_one_process_costs_the_others_nothing(
    procs: tuple[ServerProcess, ...], connect: Connect, http: aiohttp.ClientSession
) -> None:
    before = await settled(http, procs[1])
    client = await connect(procs[0].url, unique("newcomer"))
    await client.next("welcome")  # emitted to the connection alone: not published
    await asyncio.sleep(0.3)
    assert await received(http, procs[1]) == before


async def test_a_private_message_reaches_both_users_and_no_other_process(
    procs: tuple[ServerProcess, ...], connect: Connect, http: aiohttp.ClientSession
) -> None:
    alice, bob = unique("alice"), unique("bob")
    sender, recipient = await connect(procs[0].url, alice), await connect(procs[1].url, bob)
    await connect(procs[2].url, unique("carol"))
    before = await settled(http, procs[2])
    ack = expect_ok(await sender.call("private_message", {"to": bob, "text": "hi"}))
    assert (await recipient.next("private_message"))["id"] == ack["id"]
    assert (await sender.next("private_message"))["id"] == ack["id"]
    await recipient.no_event("private_message", within=0.3)
    assert await received(http, procs[2]) == before


async def test_a_message_sent_right_after_a_join_ack_reaches_the_joiner(
    procs: tuple[ServerProcess, ...], connect: Connect
) -> None:
    # Each room is new to the joiner's process: its join subscribes, and the
    # message sent as soon as the ack is back must find the subscription.
    sender = await connect(procs[0].url, unique("s"))
    joiner = await connect(procs[1].url, unique("j"))
    for _ in range(20):
        room = unique("room")
        await join(sender, room)
        await join(joiner, room)
        ack = expect_ok(await sender.call("message", {"room": room, "text": "now"}))
        assert (await joiner.next("message"))["id"] == ack["id"]


async def test_a_join_during_a_stream_of_messages_misses_none(
    procs: tuple[ServerProcess, ...], connect: Connect
) -> None:
    room = unique("room")
    sender = await connect(procs[0].url, unique("s"))
    await join(sender, room)
    sending = asyncio.create_task(send_many(sender, room, 400, batch=5))
    await asyncio.sleep(0.2)
    joiner = await connect(procs[1].url, unique("j"))
    history = [m["id"] for m in (await join(joiner, room))["history"]]
    ids = await sending
    newest = max(history, default="")  # every message after the join's history comes live
    expected = [i for i in ids if i > newest]
    live = [m["id"] for m in joiner.pending("message")]
    while len([i for i in live if i > newest]) < len(expected):
        live.append((await joiner.next("message"))["id"])
    assert [i for i in live if i > newest] == expected


async def test_a_lost_subscription_comes_back_with_every_room_and_user_channel(
    procs: tuple[ServerProcess, ...],
    redis: RedisServer | RedisClusterServers,
    client: aioredis.Redis | RedisCluster,
    connect: Connect,
) -> None:
    room, alice = unique("room"), unique("alice")
    member = await connect(procs[0].url, alice)
    await join(member, room)
    # One pub/sub connection per process on one Redis; on a cluster one per
    # process and master it subscribes on.
    assert await kill_subscriptions(redis.url) >= len(procs)
    await member.next("resync", timeout=10)
    for group in (room_channel(room), user_channel(alice)):
        assert await subscribers(client, channel_of(redis, group)) == 1


async def test_an_idle_process_spends_far_less_cpu_than_a_busy_one_on_a_busy_room(
    procs: tuple[ServerProcess, ...], connect: Connect
) -> None:
    sending, busy, idle = procs
    room = unique("busy")
    sender = await connect(sending.url, unique("s"))
    receivers = [await connect(busy.url, unique("r")) for _ in range(3)]
    await connect(idle.url, unique("bystander"))
    await join(sender, room)
    for receiver in receivers:
        await join(receiver, room)
    assert busy.pid is not None and idle.pid is not None
    start = {proc.pid: cpu_seconds(proc.pid) for proc in (busy, idle) if proc.pid}
    ids = await send_many(sender, room, 3000)
    for receiver in receivers:
        assert len(await drain(receiver, 3000)) == len(ids)
    busy_cpu = cpu_seconds(busy.pid) - start[busy.pid]
    idle_cpu = cpu_seconds(idle.pid) - start[idle.pid]
    print(f"\n[routing] 3000 messages: busy process {busy_cpu:.2f} s CPU, idle {idle_cpu:.2f} s")
    assert idle_cpu < busy_cpu / 3


async def test_with_single_channel_routing_every_process_hears_every_room(
    server_processes: StartProcesses, connect: Connect, http: aiohttp.ClientSession
) -> None:
    busy, idle = await server_processes(2, env={"CHAT_BUS_ROUTING": "single"})
    room = unique("room")
    sender = await connect(busy.url, unique("s"))
    await join(sender, room)
    await connect(idle.url, unique("bystander"))
    before = await received(http, idle)
    await send_many(sender, room, 100)
    await drain(sender, 100)

    async def heard_all() -> bool:
        return await received(http, idle) - before >= 100

    await wait_for(heard_all, 5)
