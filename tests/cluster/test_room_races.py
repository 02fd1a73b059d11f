"""Rooms across two processes: racing creations, bans of many connections, lapsing bans."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.chat import assert_has, expect_error, expect_ok, join, owned_room, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartProcesses

pytestmark = pytest.mark.redis

#: Rounds of the creation race: enough that a lost race would show.
RACE_ROUNDS = 25


def is_leave_of(user: str) -> Callable[[Any], bool]:
    """A ``next_where`` predicate: ``presence`` ``leave`` of ``user``."""
    return lambda p: p["action"] == "leave" and p["user"] == user


async def test_create_room_racing_on_two_processes_has_exactly_one_winner(
    server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2)
    racers = [
        await connect(url, unique(f"racer{i}"))
        for i, url in enumerate((first.url, first.url, second.url, second.url))
    ]
    for _ in range(RACE_ROUNDS):
        room = unique("race")
        acks = await asyncio.gather(
            *(c.call("create_room", {"room": room, "topic": "mine"}) for c in racers)
        )
        winners = [ack for ack in acks if ack.get("ok") is True]
        assert len(winners) == 1, acks
        for ack in acks:
            if ack is not winners[0]:
                expect_error(ack, "room_exists")
        owner = winners[0]["room"]["owner"]
        # both processes read the same owner from the registry
        for client in (racers[0], racers[3]):
            info = expect_ok(await client.call("room_info", {"room": room}))["room"]
            assert info["owner"] == owner


async def several_connections(connect: Connect, urls: list[str], user: str) -> list[ChatClient]:
    return [await connect(url, user) for url in urls]


async def test_a_ban_takes_every_connection_on_both_processes_out_and_leaves_others_alone(
    server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2)
    olga, room, owner = await owned_room(connect, first.url)
    troll = unique("troll")
    trolls = await several_connections(
        connect, [first.url, first.url, second.url, second.url], troll
    )
    bystanders = [
        await connect(first.url, unique("ann")),
        await connect(second.url, unique("bob")),
    ]
    for client in (olga, *trolls, *bystanders):
        await join(client, room)
    for client in (olga, *bystanders):
        client.pending("presence")

    expect_ok(await olga.call("ban", {"room": room, "user": troll, "reason": "flood"}))
    notices = await asyncio.gather(*(c.next("kicked", timeout=1) for c in trolls))
    for notice in notices:
        assert_has(notice, {"room": room, "by": owner, "reason": "flood"})
    for watcher in bystanders:
        await watcher.next_where("presence", is_leave_of(troll), timeout=1)

    for client in trolls:
        expect_error(await client.call("join", {"room": room}), "banned")
        expect_error(await client.call("message", {"room": room, "text": "x"}), "not_in_room")
    # the others are still in the room, on both processes, and hear each other
    sent = expect_ok(await bystanders[0].call("message", {"room": room, "text": "still here"}))
    for client in (olga, bystanders[1]):
        heard = await client.next_where("message", lambda m: m["id"] == sent["id"], timeout=2)
        assert heard["text"] == "still here"
    for client in (olga, *bystanders):
        await client.no_event("kicked", within=0.2)
        await client.no_event_where(
            "presence",
            lambda p: p["action"] == "leave" and p["user"] != troll,
            within=0.1,
        )
    for client in trolls:
        await client.no_event("message", within=0.1)


async def test_a_ban_with_seconds_lapses_by_itself_on_both_processes(
    server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2)
    olga, room, _ = await owned_room(connect, first.url)
    troll = unique("troll")
    here, there = await connect(first.url, troll), await connect(second.url, troll)
    expect_ok(await olga.call("ban", {"room": room, "user": troll, "seconds": 1}))
    for client in (here, there):
        expect_error(await client.call("join", {"room": room}), "banned")
    await asyncio.sleep(1.3)
    for client in (there, here):
        await join(client, room)
