"""Rooms: join and leave, members, presence counted per user, disconnects leaving every room."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_server.config import Settings
from tests.support.chat import assert_has, expect_error, expect_ok, join
from tests.support.fixtures import Connect, StartServer


def about(user: str, action: str | None = None) -> Callable[[Any], bool]:
    """Matches ``presence`` payloads about ``user`` (and ``action``, if given).

    Whether the joining connection also hears its own ``presence`` is left
    open by the contract, so tests look only at events about other users.
    """
    return lambda p: p.get("user") == user and action in (None, p.get("action"))


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A single-process server, once with in-memory stores and once over Redis."""
    return await start_server(backend_settings())


async def test_join_answers_ok_room_members_history_and_recovered(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    ack = await alice.call("join", {"room": "lobby"})
    assert_has(
        ack,
        {"ok": True, "room": "lobby", "members": ["alice"], "history": [], "recovered": True},
    )


async def test_join_members_include_everyone_present_sorted_by_code_point(
    url: str, connect: Connect
) -> None:
    names = ["bob", "alice", "Zed", "_under", "Alice", "9lives", "-dash", ".dot"]
    for name in names:
        await join(await connect(url, name), "lobby")
    last = await connect(url, "carol")
    ack = await join(last, "lobby")
    expected = ["-dash", ".dot", "9lives", "Alice", "Zed", "_under", "alice", "bob", "carol"]
    assert ack["members"] == expected


async def test_members_list_a_user_once_whatever_their_connections(
    url: str, connect: Connect
) -> None:
    await join(await connect(url, "alice"), "lobby")
    await join(await connect(url, "alice"), "lobby")
    ack = await join(await connect(url, "bob"), "lobby")
    assert ack["members"] == ["alice", "bob"]


async def test_members_are_per_room(url: str, connect: Connect) -> None:
    await join(await connect(url, "alice"), "lobby")
    ack = await join(await connect(url, "bob"), "dev")
    assert ack["members"] == ["bob"]


async def test_join_emits_presence_join_to_the_room(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await join(await connect(url, "bob"), "lobby")
    presence = await alice.next_where("presence", about("bob"))
    assert_has(presence, {"room": "lobby", "user": "bob", "action": "join"})


async def test_presence_does_not_reach_other_rooms(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await join(alice, "dev")
    await join(await connect(url, "bob"), "lobby")
    await alice.no_event_where("presence", about("bob"), within=0.3)


async def test_a_second_connection_of_a_present_user_emits_no_presence(
    url: str, connect: Connect
) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    await join(await connect(url, "alice"), "lobby")
    await bob.next_where("presence", about("alice", "join"))
    await join(await connect(url, "alice"), "lobby")
    await bob.no_event_where("presence", about("alice"), within=0.3)


async def test_joining_a_room_twice_is_harmless(url: str, connect: Connect) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    again = await join(alice, "lobby")
    assert again["room"] == "lobby"
    assert again["members"] == ["alice", "bob"]
    await bob.next_where("presence", about("alice", "join"))
    await bob.no_event_where("presence", about("alice"), within=0.3)


async def test_a_connection_that_joined_twice_gets_each_message_once(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await join(alice, "lobby")
    expect_ok(await alice.call("message", {"room": "lobby", "text": "once"}))
    assert (await alice.next("message"))["text"] == "once"
    await alice.no_event("message", within=0.3)


async def test_a_connection_that_joined_twice_leaves_with_one_leave(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await join(alice, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    expect_error(await alice.call("message", {"room": "lobby", "text": "x"}), "not_in_room")


async def test_leave_answers_ok_and_room(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    assert_has(await alice.call("leave", {"room": "lobby"}), {"ok": True, "room": "lobby"})


async def test_leave_emits_presence_leave_to_the_room(url: str, connect: Connect) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await bob.next_where("presence", about("alice", "join"))
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    presence = await bob.next_where("presence", about("alice"))
    assert_has(presence, {"room": "lobby", "user": "alice", "action": "leave"})


async def test_leave_removes_the_user_from_members(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    ack = await join(await connect(url, "bob"), "lobby")
    assert ack["members"] == ["bob"]


async def test_after_leave_room_messages_stop_arriving(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    bob = await connect(url, "bob")
    await join(alice, "lobby")
    await join(bob, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    expect_ok(await bob.call("message", {"room": "lobby", "text": "gone?"}))
    await bob.next("message")
    await alice.no_event("message", within=0.3)


async def test_leaving_a_room_not_joined_answers_not_in_room(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    expect_error(await alice.call("leave", {"room": "lobby"}), "not_in_room")


async def test_leaving_twice_answers_not_in_room_the_second_time(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    expect_error(await alice.call("leave", {"room": "lobby"}), "not_in_room")


async def test_presence_leave_waits_for_the_users_last_connection_in_the_room(
    url: str, connect: Connect
) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    first, second = await connect(url, "alice"), await connect(url, "alice")
    await join(first, "lobby")
    await join(second, "lobby")
    await bob.next_where("presence", about("alice", "join"))
    expect_ok(await first.call("leave", {"room": "lobby"}))
    await bob.no_event_where("presence", about("alice"), within=0.3)
    expect_ok(await second.call("leave", {"room": "lobby"}))
    presence = await bob.next_where("presence", about("alice"))
    assert_has(presence, {"room": "lobby", "user": "alice", "action": "leave"})


async def test_a_user_stays_a_member_while_one_connection_remains(
    url: str, connect: Connect
) -> None:
    first, second = await connect(url, "alice"), await connect(url, "alice")
    await join(first, "lobby")
    await join(second, "lobby")
    expect_ok(await first.call("leave", {"room": "lobby"}))
    ack = await join(await connect(url, "bob"), "lobby")
    assert ack["members"] == ["alice", "bob"]


async def test_a_connection_of_the_user_outside_the_room_does_not_keep_them_present(
    url: str, connect: Connect
) -> None:
    in_room, elsewhere = await connect(url, "alice"), await connect(url, "alice")
    await join(in_room, "lobby")
    await join(elsewhere, "dev")
    expect_ok(await in_room.call("leave", {"room": "lobby"}))
    ack = await join(await connect(url, "bob"), "lobby")
    assert ack["members"] == ["bob"]


async def test_disconnect_emits_presence_leave_for_every_room(url: str, connect: Connect) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    await join(bob, "dev")
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await join(alice, "dev")
    joins = [await bob.next_where("presence", about("alice", "join")) for _ in range(2)]
    assert {p["room"] for p in joins} == {"lobby", "dev"}
    await alice.close()
    leaves = [await bob.next_where("presence", about("alice")) for _ in range(2)]
    assert sorted((p["room"], p["user"], p["action"]) for p in leaves) == [
        ("dev", "alice", "leave"),
        ("lobby", "alice", "leave"),
    ]


async def test_disconnect_removes_the_user_from_every_rooms_members(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await join(alice, "dev")
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    await join(bob, "dev")
    await alice.close()
    # once both of alice's leaves arrive, her disconnect has been handled
    for _ in range(2):
        await bob.next_where("presence", about("alice", "leave"))
    assert (await join(bob, "lobby"))["members"] == ["bob"]
    assert (await join(bob, "dev"))["members"] == ["bob"]


async def test_disconnecting_one_of_two_connections_emits_no_leave(
    url: str, connect: Connect
) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    first, second = await connect(url, "alice"), await connect(url, "alice")
    await join(first, "lobby")
    await join(second, "lobby")
    await bob.next_where("presence", about("alice", "join"))
    await first.close()
    await bob.no_event_where("presence", about("alice"), within=0.5)
    assert (await join(bob, "lobby"))["members"] == ["alice", "bob"]


async def test_a_user_can_rejoin_after_leaving(url: str, connect: Connect) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    ack = await join(alice, "lobby")
    assert ack["members"] == ["alice", "bob"]
    actions = [(await bob.next_where("presence", about("alice")))["action"] for _ in range(3)]
    assert actions == ["join", "leave", "join"]


VALID_ROOMS = ["a", "R" * 64, "#general", "dev.ops-1_x", "A#b#c", "...", "---", "123"]


@pytest.mark.parametrize("room", VALID_ROOMS)
async def test_any_valid_room_name_can_be_joined(url: str, connect: Connect, room: str) -> None:
    ack = await join(await connect(url, "alice"), room)
    assert ack["room"] == room


async def test_join_history_holds_messages_sent_before_joining(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    sent: list[Any] = []
    for text in ("one", "two"):
        sent.append(expect_ok(await alice.call("message", {"room": "lobby", "text": text})))
    ack = await join(await connect(url, "bob"), "lobby")
    assert [m["text"] for m in ack["history"]] == ["one", "two"]
    assert [m["id"] for m in ack["history"]] == [s["id"] for s in sent]


async def test_room_names_are_case_sensitive(url: str, connect: Connect) -> None:
    await join(await connect(url, "alice"), "Lobby")
    ack = await join(await connect(url, "bob"), "lobby")
    assert ack["members"] == ["bob"]


async def test_a_connection_that_drops_without_a_goodbye_leaves_its_rooms(
    url: str, connect: Connect
) -> None:
    bob = await connect(url, "bob")
    await join(bob, "lobby")
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    await bob.next_where("presence", about("alice", "join"))
    # close the WebSocket itself: no Socket.IO or Engine.IO goodbye packet
    await alice.sio.eio.ws.close()
    await bob.next_where("presence", about("alice", "leave"))
    assert (await join(bob, "lobby"))["members"] == ["bob"]
