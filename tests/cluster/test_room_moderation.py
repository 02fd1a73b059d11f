"""Kicks and bans reach every process within 1 s; rooms outlive a restart of every process."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.chat import assert_has, expect_error, expect_ok, join, owned_room, unique
from tests.support.fixtures import Connect, StartProcesses

pytestmark = pytest.mark.redis


async def test_a_ban_on_one_process_takes_the_user_out_on_both_within_a_second(
    server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2)
    olga, room, owner = await owned_room(connect, first.url)
    troll = unique("troll")
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


async def test_members_roles_topic_and_bans_survive_a_restart_of_every_process(
    server_processes: StartProcesses, connect: Connect
) -> None:
    room, owner, mod, member, troll = (unique(n) for n in ("room", "olga", "mia", "max", "troll"))
    first, second = await server_processes(2)
    olga = await connect(first.url, owner)
    expect_ok(await olga.call("create_room", {"room": room, "private": True, "topic": "plans"}))
    for user in (mod, member, troll):
        expect_ok(await olga.call("invite", {"room": room, "user": user}))
    expect_ok(await olga.call("set_role", {"room": room, "user": mod, "role": "moderator"}))
    expect_ok(await olga.call("ban", {"room": room, "user": troll}))
    before = expect_ok(await olga.call("set_topic", {"room": room, "topic": "new plans"}))["room"]
    await olga.close()
    for process in (first, second):
        await asyncio.to_thread(process.stop)

    third, fourth = await server_processes(2)
    after = expect_ok(await (await connect(fourth.url, owner)).call("room_info", {"room": room}))
    assert after["room"] == before
    assert before["moderators"] == [mod] and before["topic"] == "new plans"
    assert before["members"] == sorted([owner, mod, member])
    await join(await connect(third.url, member), room)
    expect_error(await (await connect(third.url, troll)).call("join", {"room": room}), "banned")
    moderator = await connect(fourth.url, mod)
    expect_ok(await moderator.call("set_topic", {"room": room, "topic": "still a moderator"}))
