"""Changes and read markers across two processes sharing one Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.crc import key_slot

from tests.support.chat import alice_and_bob_in_a_room, assert_has, expect_ok, join, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartProcesses

pytestmark = pytest.mark.redis

#: Edits each of the two racing connections sends.
EDITS = 25
#: Read markers moved one after the other in the burst test.
READS = 40


async def _updates(client: ChatClient, count: int) -> list[Any]:
    return [await client.next("message_updated", timeout=10) for _ in range(count)]


async def test_an_edit_on_one_process_reaches_the_room_on_the_other(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2)
    alice, bob, room, first = await alice_and_bob_in_a_room((one.url, two.url), connect)
    ack = expect_ok(await alice.call("edit", {"room": room, "id": first["id"], "text": "fixed"}))
    update = await bob.next("message_updated")
    assert_has(update, {"id": first["id"], "rev": ack["rev"], "text": "fixed"})


async def test_racing_edits_on_two_processes_leave_every_client_with_the_last_rev(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2)
    room, alice = unique("room"), unique("alice")
    here, there = await connect(one.url, alice), await connect(two.url, alice)
    watchers = [await connect(url, unique("w")) for url in (one.url, two.url)]
    for client in (here, there, *watchers):
        await join(client, room)
    sent = expect_ok(await here.call("message", {"room": room, "text": "v0"}))

    async def edit_many(client: ChatClient, tag: str) -> list[str]:
        acks = await asyncio.gather(
            *(
                client.call("edit", {"room": room, "id": sent["id"], "text": f"{tag}{n}"})
                for n in range(EDITS)
            )
        )
        return [expect_ok(ack)["rev"] for ack in acks]

    revs = [
        r for rs in await asyncio.gather(edit_many(here, "a"), edit_many(there, "b")) for r in rs
    ]
    final = expect_ok(await watchers[0].call("history", {"room": room}))["messages"][-1]
    assert final["rev"] == max(revs)
    for client in (here, there, *watchers):
        heard = await _updates(client, 2 * EDITS)
        assert [u["rev"] for u in heard] == sorted(revs), "an update arrived out of rev order"
        assert heard[-1]["text"] == final["text"]


async def test_a_read_on_one_process_reaches_the_other_users_connections_elsewhere(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2)
    alice, bob = unique("alice"), unique("bob")
    alice_there, bob_here = await connect(two.url, alice), await connect(one.url, bob)
    bob_there = await connect(two.url, bob)
    sent = expect_ok(await alice_there.call("private_message", {"to": bob, "text": "hi"}))
    expect_ok(await bob_here.call("read", {"with": alice, "id": sent["id"]}))
    assert await alice_there.next("read") == {"with": bob, "user": bob, "id": sent["id"]}
    assert await bob_there.next("read") == {"with": alice, "user": bob, "id": sent["id"]}
    entry = expect_ok(await bob_there.call("conversations", {}))["conversations"][0]
    assert_has(entry, {"with": alice, "read": sent["id"], "unread": 0})


def _on_another_master(other: str) -> str:
    """A fresh user name whose channel's slot lies in another third than ``other``'s.

    On the tests' 3-master cluster (slots split in thirds by ``redis-cli
    --cluster create``), so the two users' channels arrive over two
    connections; on one Redis the choice does not matter.
    """

    def third(name: str) -> int:
        slot = key_slot(f"user:{name}".encode())
        return 0 if slot <= 5460 else 1 if slot <= 10922 else 2

    while True:
        name = unique("alice")
        if third(name) != third(other):
            return name


async def test_every_read_of_a_burst_reaches_both_users_other_process(
    server_processes: StartProcesses, connect: Connect
) -> None:
    # Each read is two emits, to the reader's channel then the other user's:
    # on a cluster they arrive over two masters' connections, in any order.
    one, two = await server_processes(2)
    bob = unique("bob")
    alice = _on_another_master(bob)
    alice_there, bob_here = await connect(two.url, alice), await connect(one.url, bob)
    bob_there = await connect(two.url, bob)
    sent = [
        expect_ok(await alice_there.call("private_message", {"to": bob, "text": f"m{n}"}))
        for n in range(READS)
    ]
    for message in sent:
        expect_ok(await bob_here.call("read", {"with": alice, "id": message["id"]}))
    ids = [m["id"] for m in sent]
    assert [(await alice_there.next("read"))["id"] for _ in ids] == ids
    assert [(await bob_there.next("read"))["id"] for _ in ids] == ids


async def test_a_client_offline_during_a_change_sees_it_after_rejoining_with_since(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2)
    alice, bob, room, first = await alice_and_bob_in_a_room((one.url, two.url), connect)
    await bob.close()
    reaction = {"room": room, "id": first["id"], "emoji": "🎉", "add": True}
    expect_ok(await alice.call("react", reaction))
    deleted = expect_ok(await alice.call("delete", {"room": room, "id": first["id"]}))
    back = await connect(two.url, unique("bob"))
    joined = await join(back, room, since=first["id"])
    assert [(u["id"], u["rev"], u.get("deleted")) for u in joined["updates"]] == [
        (first["id"], deleted["rev"], True)
    ]
