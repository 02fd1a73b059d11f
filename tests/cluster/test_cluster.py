"""Several real processes over one real Redis behave as one chat."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from tests.support.chat import assert_has, expect_ok, join, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartProcesses
from tests.support.process import ServerProcess
from tests.support.redis import RedisServer, require_redis_binary
from tests.support.settings import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ENV = {
    "CHAT_API_KEY": API_KEY,
    "CHAT_RATE_BURST": "10000",
    "CHAT_RATE_PER_SECOND": "10000",
    "CHAT_API_RATE_PER_SECOND": "10000",
    "LOG_LEVEL": "WARNING",
}

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module", params=["redis", "cluster"])
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two processes sharing a Redis of their own, or the session's Redis Cluster, per module.

    Tests share them, so each uses fresh room and user names (``unique``).
    """
    redis: RedisServer | None = None
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        require_redis_binary()
        redis = RedisServer()
        redis.start()
        url = redis.url
    procs = (
        ServerProcess(env={**ENV, "REDIS_URL": url}),
        ServerProcess(env={**ENV, "REDIS_URL": url}),
    )
    try:
        for proc in procs:
            proc.launch()
        for proc in procs:
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs:
            proc.stop(signum=signal.SIGINT)
        if redis is not None:
            redis.close()


@pytest.fixture
def a(cluster: tuple[ServerProcess, ServerProcess]) -> str:
    return cluster[0].url


@pytest.fixture
def b(cluster: tuple[ServerProcess, ServerProcess]) -> str:
    return cluster[1].url


def about(user: str, action: str | None = None) -> Callable[[Any], bool]:
    return lambda p: p.get("user") == user and action in (None, p.get("action"))


async def post_emit(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(f"{url}/api/emit", json=body, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def get_room(http: aiohttp.ClientSession, url: str, room: str) -> Any:
    async with http.get(f"{url}/api/rooms/{room}", headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return await response.json()


# -- rooms and presence ---------------------------------------------------------------------------


async def test_a_room_message_reaches_members_on_both_processes(
    a: str, b: str, connect: Connect
) -> None:
    room = unique("room")
    on_a, on_b = await connect(a, unique("u")), await connect(b, unique("u"))
    await join(on_a, room)
    await join(on_b, room)
    ack = expect_ok(await on_a.call("message", {"room": room, "text": "across"}))
    for client in (on_a, on_b):
        received = await client.next("message")
        assert received["id"] == ack["id"]
        assert received["text"] == "across"


async def test_each_process_delivers_a_room_message_once(a: str, b: str, connect: Connect) -> None:
    room = unique("room")
    on_a, on_b = await connect(a, unique("u")), await connect(b, unique("u"))
    await join(on_a, room)
    await join(on_b, room)
    expect_ok(await on_b.call("message", {"room": room, "text": "once"}))
    for client in (on_a, on_b):
        await client.next("message")
        await client.no_event("message", within=0.3)


async def test_join_lists_members_held_by_the_other_process_sorted(
    a: str, b: str, connect: Connect
) -> None:
    room = unique("room")
    names = sorted([unique("zed"), unique("Amy"), unique("bob")])
    await join(await connect(a, names[2]), room)
    await join(await connect(b, names[0]), room)
    ack = await join(await connect(a, names[1]), room)
    assert ack["members"] == names


async def test_presence_join_crosses_processes(a: str, b: str, connect: Connect) -> None:
    room, bob = unique("room"), unique("bob")
    watcher = await connect(a, unique("w"))
    await join(watcher, room)
    await join(await connect(b, bob), room)
    presence = await watcher.next_where("presence", about(bob))
    assert_has(presence, {"room": room, "user": bob, "action": "join"})


async def test_presence_counts_a_user_once_across_processes(
    a: str, b: str, connect: Connect
) -> None:
    room, alice = unique("room"), unique("alice")
    watcher = await connect(a, unique("w"))
    await join(watcher, room)
    on_a, on_b = await connect(a, alice), await connect(b, alice)
    await join(on_a, room)
    await watcher.next_where("presence", about(alice, "join"))
    await join(on_b, room)
    await watcher.no_event_where("presence", about(alice), within=0.5)
    expect_ok(await on_a.call("leave", {"room": room}))
    await watcher.no_event_where("presence", about(alice), within=0.5)
    expect_ok(await on_b.call("leave", {"room": room}))
    presence = await watcher.next_where("presence", about(alice))
    assert_has(presence, {"room": room, "user": alice, "action": "leave"})


async def test_a_user_on_both_processes_is_listed_once(a: str, b: str, connect: Connect) -> None:
    room, alice = unique("room"), unique("alice")
    await join(await connect(a, alice), room)
    ack = await join(await connect(b, alice), room)
    assert ack["members"] == [alice]


async def test_a_disconnect_on_one_process_reaches_the_other_as_presence_leave(
    a: str, b: str, connect: Connect
) -> None:
    room, alice = unique("room"), unique("alice")
    watcher = await connect(b, unique("w"))
    await join(watcher, room)
    leaving = await connect(a, alice)
    await join(leaving, room)
    await watcher.next_where("presence", about(alice, "join"))
    await leaving.close()
    await watcher.next_where("presence", about(alice, "leave"))
    assert alice not in (await join(watcher, room))["members"]


async def test_rest_room_on_one_process_lists_members_of_both(
    a: str, b: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    room = unique("room")
    names = sorted([unique("p"), unique("q")])
    await join(await connect(a, names[0]), room)
    await join(await connect(b, names[1]), room)
    assert (await get_room(http, a, room))["members"] == names
    assert (await get_room(http, b, room))["members"] == names


# -- private messages -----------------------------------------------------------------------------


async def test_a_private_message_reaches_every_connection_of_both_users_on_both_processes(
    a: str, b: str, connect: Connect
) -> None:
    alice, bob = unique("alice"), unique("bob")
    alices = [await connect(a, alice), await connect(b, alice)]
    bobs = [await connect(a, bob), await connect(b, bob)]
    ack = expect_ok(await alices[0].call("private_message", {"to": bob, "text": "hey"}))
    for client in alices + bobs:
        received = await client.next("private_message")
        expected = {"id": ack["id"], "from": alice, "to": bob, "text": "hey", "ts": ack["ts"]}
        assert_has(received, expected)
        await client.no_event("private_message", within=0.2)


async def test_an_offline_recipient_reads_it_later_on_the_other_process(
    a: str, b: str, connect: Connect
) -> None:
    alice, bob = unique("alice"), unique("bob")
    ack = expect_ok(
        await (await connect(a, alice)).call("private_message", {"to": bob, "text": "later"})
    )
    reader = await connect(b, bob)
    messages = expect_ok(await reader.call("history", {"with": alice}))["messages"]
    assert [m["id"] for m in messages] == [ack["id"]]


# -- history and ids ------------------------------------------------------------------------------


async def test_history_written_through_one_process_is_read_through_the_other(
    a: str, b: str, connect: Connect
) -> None:
    room = unique("room")
    writer = await connect(a, unique("w"))
    await join(writer, room)
    ids = [
        expect_ok(await writer.call("message", {"room": room, "text": f"m{i}"}))["id"]
        for i in range(5)
    ]
    reader = await connect(b, unique("r"))
    assert [m["id"] for m in (await join(reader, room))["history"]] == ids
    history = expect_ok(await reader.call("history", {"room": room, "limit": 3}))
    assert [m["id"] for m in history["messages"]] == ids[-3:]


async def test_ids_from_both_processes_are_unique_and_ordered_in_one_room(
    a: str, b: str, connect: Connect
) -> None:
    room = unique("room")
    on_a, on_b = await connect(a, unique("u")), await connect(b, unique("u"))
    await join(on_a, room)
    await join(on_b, room)
    ids = []
    for i in range(10):
        sender = on_a if i % 2 else on_b
        ids.append(expect_ok(await sender.call("message", {"room": room, "text": str(i)}))["id"])
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids
    history = expect_ok(await on_a.call("history", {"room": room}))["messages"]
    assert [m["id"] for m in history] == ids


async def test_ids_sent_at_once_through_both_processes_are_unique(
    a: str, b: str, connect: Connect
) -> None:
    room = unique("room")
    on_a, on_b = await connect(a, unique("u")), await connect(b, unique("u"))
    await join(on_a, room)
    await join(on_b, room)
    acks = await asyncio.gather(
        *(
            client.call("message", {"room": room, "text": str(i)})
            for i in range(30)
            for client in (on_a, on_b)
        )
    )
    ids = [expect_ok(ack)["id"] for ack in acks]
    assert len(set(ids)) == 60
    history = expect_ok(await on_b.call("history", {"room": room, "limit": 200}))["messages"]
    kept = [m["id"] for m in history]
    assert set(kept) == set(ids)
    assert kept == sorted(kept)


async def test_join_since_on_the_other_process_recovers_what_was_missed(
    a: str, b: str, connect: Connect
) -> None:
    room, bob = unique("room"), unique("bob")
    writer = await connect(a, unique("w"))
    await join(writer, room)
    first = await connect(a, bob)
    await join(first, room)
    seen = expect_ok(await writer.call("message", {"room": room, "text": "seen"}))["id"]
    await first.close()
    missed = [
        expect_ok(await writer.call("message", {"room": room, "text": f"missed{i}"}))["id"]
        for i in range(3)
    ]
    ack = await join(await connect(b, bob), room, since=seen)
    assert [m["id"] for m in ack["history"]] == missed
    assert ack["recovered"] is True


# -- REST -----------------------------------------------------------------------------------------


async def test_a_rest_room_emit_to_either_process_reaches_clients_on_both(
    a: str, b: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    room = unique("room")
    on_a, on_b = await connect(a, unique("u")), await connect(b, unique("u"))
    await join(on_a, room)
    await join(on_b, room)
    for target in (a, b):
        body = await post_emit(http, target, {"room": room, "text": f"via {target}"})
        for client in (on_a, on_b):
            received = await client.next("message")
            assert (received["id"], received["from"]) == (body["id"], "bot")


async def test_a_rest_broadcast_to_either_process_reaches_clients_on_both(
    a: str, b: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    on_a, on_b = await connect(a, unique("u")), await connect(b, unique("u"))
    for target in (a, b):
        text = unique("broadcast")
        body = await post_emit(http, target, {"broadcast": True, "text": text})
        for client in (on_a, on_b):
            announcement = await client.next("announcement")
            assert (announcement["id"], announcement["text"]) == (body["id"], text)


async def test_a_rest_private_emit_reaches_the_user_on_the_other_process_and_is_kept(
    a: str, b: str, connect: Connect, http: aiohttp.ClientSession
) -> None:
    alice = unique("alice")
    on_a = await connect(a, alice)
    body = await post_emit(http, b, {"to": alice, "text": "from the bot"})
    assert (await on_a.next("private_message"))["id"] == body["id"]
    history = expect_ok(await on_a.call("history", {"with": "bot", "limit": 200}))["messages"]
    assert body["id"] in [m["id"] for m in history]


async def test_both_processes_report_redis_ok(a: str, b: str, http: aiohttp.ClientSession) -> None:
    for url in (a, b):
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "redis": "ok"}


# -- processes that come and go -------------------------------------------------------------------


#: With CHAT_PRESENCE_TTL=2, a killed process's users must be gone well within this.
DROP_WITHIN = 10.0
SHORT_TTL = {"CHAT_PRESENCE_TTL": "2"}


@pytest.mark.timeout(DROP_WITHIN + 60)
async def test_users_of_a_killed_process_drop_out_of_members(
    server_processes: StartProcesses, connect: Connect, http: aiohttp.ClientSession
) -> None:
    doomed, survivor = await server_processes(2, env=SHORT_TTL)
    room, alice, bob = unique("room"), unique("alice"), unique("bob")
    await join(await connect(doomed.url, alice), room)
    watcher = await connect(survivor.url, bob)
    await join(watcher, room)
    assert (await get_room(http, survivor.url, room))["members"] == sorted([alice, bob])
    doomed.kill()
    started = time.monotonic()
    while alice in (await get_room(http, survivor.url, room))["members"]:
        assert time.monotonic() - started < DROP_WITHIN, "killed process's user still present"
        await asyncio.sleep(0.5)
    assert (await join(watcher, room))["members"] == [bob]


async def test_the_survivor_of_a_killed_process_keeps_chatting(
    server_processes: StartProcesses, connect: Connect
) -> None:
    doomed, survivor = await server_processes(2)
    room = unique("room")
    await join(await connect(doomed.url, unique("d")), room)
    one, two = await connect(survivor.url, unique("u")), await connect(survivor.url, unique("v"))
    await join(one, room)
    await join(two, room)
    doomed.kill()
    expect_ok(await one.call("message", {"room": room, "text": "still here"}))
    assert (await two.next("message"))["text"] == "still here"


async def test_a_restarted_process_rejoins_the_chat(
    server_processes: StartProcesses, connect: Connect
) -> None:
    restarted, steady = await server_processes(2)
    # SIGINT: what is tested is coming back, not the SIGTERM drain
    await asyncio.to_thread(restarted.stop, 10.0, signal.SIGINT)
    await asyncio.to_thread(restarted.start)
    room = unique("room")
    on_restarted: ChatClient = await connect(restarted.url, unique("r"))
    on_steady = await connect(steady.url, unique("s"))
    await join(on_restarted, room)
    await join(on_steady, room)
    expect_ok(await on_steady.call("message", {"room": room, "text": "welcome back"}))
    assert (await on_restarted.next("message"))["text"] == "welcome back"


async def test_typing_crosses_processes(a: str, b: str, connect: Connect) -> None:
    room, alice = unique("room"), unique("alice")
    typist, watcher = await connect(a, alice), await connect(b, unique("w"))
    await join(typist, room)
    await join(watcher, room)
    expect_ok(await typist.call("typing", {"room": room}))
    assert_has(await watcher.next("typing"), {"room": room, "user": alice})


async def test_a_user_stays_a_member_while_connected_through_the_other_process(
    a: str, b: str, connect: Connect
) -> None:
    room, alice = unique("room"), unique("alice")
    watcher = await connect(a, unique("w"))
    await join(watcher, room)
    on_a, on_b = await connect(a, alice), await connect(b, alice)
    await join(on_a, room)
    await join(on_b, room)
    await watcher.next_where("presence", about(alice, "join"))
    await on_b.close()
    await watcher.no_event_where("presence", about(alice), within=0.5)
    assert alice in (await join(watcher, room))["members"]


async def test_processes_on_different_redis_databases_are_separate_chats(
    server_processes: StartProcesses,
    redis_server: RedisServer,
    connect: Connect,
    http: aiohttp.ClientSession,
) -> None:
    """Only processes sharing a REDIS_URL form one chat; another database is another chat."""
    base = redis_server.url.rsplit("/", 1)[0]
    (one,) = await server_processes(1, redis_url=f"{base}/1")
    (two,) = await server_processes(1, redis_url=f"{base}/2")
    room = unique("room")
    on_one, on_two = await connect(one.url, unique("u")), await connect(two.url, unique("u"))
    await join(on_one, room)
    await join(on_two, room)
    await post_emit(http, one.url, {"room": room, "text": "chat one only"})
    await post_emit(http, one.url, {"broadcast": True, "text": "chat one only"})
    assert (await on_one.next("message"))["text"] == "chat one only"
    await on_two.no_event("message", within=0.5)
    await on_two.no_event("announcement", within=0.2)


@pytest.mark.timeout(DROP_WITHIN + 60)
async def test_a_user_also_held_by_a_live_process_stays_after_the_other_is_killed(
    server_processes: StartProcesses, connect: Connect, http: aiohttp.ClientSession
) -> None:
    doomed, survivor = await server_processes(2, env=SHORT_TTL)
    room, alice, bob = unique("room"), unique("alice"), unique("bob")
    await join(await connect(doomed.url, alice), room)
    await join(await connect(survivor.url, alice), room)
    await join(await connect(doomed.url, bob), room)
    doomed.kill()
    started = time.monotonic()
    while bob in (await get_room(http, survivor.url, room))["members"]:
        assert time.monotonic() - started < DROP_WITHIN, "killed process's user still present"
        await asyncio.sleep(0.5)
    # bob's entry has expired, so alice's entry from the dead process has too
    assert (await get_room(http, survivor.url, room))["members"] == [alice]


# -- idempotent sends ---------------------------------------------------------------------


async def one_user_on_both(
    a: str, b: str, connect: Connect, room: str, watcher_on: str
) -> tuple[ChatClient, ChatClient, ChatClient]:
    """A user with a connection on each process, and a watcher, all in ``room``."""
    user = unique("u")
    clients = (
        await connect(a, user),
        await connect(b, user),
        await connect(watcher_on, unique("w")),
    )
    for client in clients:
        await join(client, room)
    return clients


async def test_a_retry_on_the_other_process_gets_the_first_ack_and_is_not_delivered(
    a: str, b: str, connect: Connect
) -> None:
    room, cid = unique("room"), unique("c")
    tab_a, tab_b, watcher = await one_user_on_both(a, b, connect, room, watcher_on=a)
    payload = {"room": room, "text": "once", "client_id": cid}
    first = expect_ok(await tab_a.call("message", payload))
    await watcher.next("message")
    again = expect_ok(await tab_b.call("message", payload))
    assert (again["id"], again["ts"]) == (first["id"], first["ts"])
    await watcher.no_event("message", within=0.3)


async def test_retries_racing_on_both_processes_store_and_deliver_once(
    a: str, b: str, connect: Connect
) -> None:
    room, cid = unique("room"), unique("c")
    tab_a, tab_b, watcher = await one_user_on_both(a, b, connect, room, watcher_on=b)
    payload = {"room": room, "text": "race", "client_id": cid}
    acks = await asyncio.gather(
        *(tab.call("message", payload) for _ in range(5) for tab in (tab_a, tab_b))
    )
    assert len({expect_ok(ack)["id"] for ack in acks}) == 1
    await watcher.next("message")
    await watcher.no_event("message", within=0.3)
    history = expect_ok(await watcher.call("history", {"room": room}))["messages"]
    assert [m["client_id"] for m in history] == [cid]
