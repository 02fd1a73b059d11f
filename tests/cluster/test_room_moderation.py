"""Kicks and bans reach every process within 1 s; rooms outlive a restart of every process."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.chat import assert_has, expect_error, expect_ok, join, unique
from tests.support.fixtures import Connect, StartProcesses

pytestmark = pytest.mark.redis


async def test_a_ban_on_one_process_takes_the_user_out_on_both_within_a_second(
    server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2)
    room, owner, troll = unique("room"), unique("olga"), unique("troll")
    olga = await connect(first.url, owner)
    expect_ok(await olga.call("create_room", {"room": room}))
    here, there = await connect(first.url, troll), await connect(second.url, troll)
    watcher = await connect(second.url, unique("bob"))
    for client in (olga, here, there, watcher):
        await join(client, room)
    expect_ok(await olga.call("ban", {"room": room, "user": troll, "reason": "spam"}))
    notices = await asyncio.gather(here.next("kicked", timeout=1), there.next("kicked", timeout=1))
    for notice in notices:
        assert_has(notice, {"room": room, "by": owner, "reason": "spam"})
    left = await watcher.next_where("presence", lambda p: p["action"] == "leave", timeout=1)
    assert_has(left, {"room": room, "user": troll})
    expect_error(await there.call("message", {"room": room, "text": "x"}), "not_in_room")
    expect_error(await there.call("join", {"room": room}), "banned")


async def test_a_private_room_survives_a_restart_of_every_process(
    server_processes: StartProcesses, connect: Connect
) -> None:
    room, owner = unique("room"), unique("olga")
    first, second = await server_processes(2)
    olga = await connect(first.url, owner)
    created = expect_ok(await olga.call("create_room", {"room": room, "private": True}))
    await olga.close()
    for process in (first, second):
        await asyncio.to_thread(process.stop)
    third, _ = await server_processes(2)
    eve, olga = await connect(third.url, unique("eve")), await connect(third.url, owner)
    expect_error(await eve.call("join", {"room": room}), "forbidden")
    info = expect_ok(await olga.call("room_info", {"room": room}))["room"]
    assert info == created["room"]
