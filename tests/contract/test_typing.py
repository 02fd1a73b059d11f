"""Typing indicators: to the others in the room, never stored."""

from __future__ import annotations

from tests.support.chat import assert_has, expect_error, expect_ok, join
from tests.support.fixtures import Connect


async def test_typing_answers_ok(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    assert_has(await alice.call("typing", {"room": "lobby"}), {"ok": True})


async def test_typing_reaches_the_others_in_the_room(chat_url: str, connect: Connect) -> None:
    alice, bob, carol = [await connect(chat_url, n) for n in ("alice", "bob", "carol")]
    for client in (alice, bob, carol):
        await join(client, "lobby")
    expect_ok(await alice.call("typing", {"room": "lobby"}))
    for client in (bob, carol):
        assert_has(await client.next("typing"), {"room": "lobby", "user": "alice"})


async def test_typing_does_not_come_back_to_the_typist(chat_url: str, connect: Connect) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(alice, "lobby")
    await join(bob, "lobby")
    expect_ok(await alice.call("typing", {"room": "lobby"}))
    await bob.next("typing")
    await alice.no_event("typing", within=0.3)


async def test_typing_does_not_reach_other_rooms(chat_url: str, connect: Connect) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(alice, "lobby")
    await join(bob, "dev")
    expect_ok(await alice.call("typing", {"room": "lobby"}))
    await bob.no_event("typing", within=0.3)


async def test_typing_in_a_room_not_joined_answers_not_in_room(
    chat_url: str, connect: Connect
) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(bob, "lobby")
    expect_error(await alice.call("typing", {"room": "lobby"}), "not_in_room")
    await bob.no_event("typing", within=0.3)


async def test_typing_is_not_kept_in_history(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("typing", {"room": "lobby"}))
    assert (await join(await connect(chat_url, "bob"), "lobby"))["history"] == []
    history = expect_ok(await alice.call("history", {"room": "lobby"}))
    assert history["messages"] == []


async def test_typing_with_an_invalid_room_answers_invalid(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    expect_error(await alice.call("typing", {"room": "no spaces"}), "invalid", "room")
