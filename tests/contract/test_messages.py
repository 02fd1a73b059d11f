"""Room messages: delivery to the room, sender included, ack ids and timestamps, text as data."""

from __future__ import annotations

import asyncio

from tests.support.chat import assert_has, expect_error, expect_ok, join, now_ms
from tests.support.fixtures import Connect


async def test_message_answers_ok_with_a_string_id_and_integer_ms_ts(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    before = now_ms()
    ack = expect_ok(await alice.call("message", {"room": "lobby", "text": "hi"}))
    after = now_ms()
    assert set(ack) >= {"ok", "id", "ts"}
    assert isinstance(ack["id"], str)
    assert ack["id"]
    assert type(ack["ts"]) is int
    assert before - 1000 <= ack["ts"] <= after + 1000


async def test_message_reaches_every_connection_in_the_room_sender_included(
    chat_url: str, connect: Connect
) -> None:
    alice, bob, carol = [await connect(chat_url, n) for n in ("alice", "bob", "carol")]
    for client in (alice, bob, carol):
        await join(client, "lobby")
    ack = expect_ok(await alice.call("message", {"room": "lobby", "text": "hello all"}))
    expected = {
        "id": ack["id"],
        "room": "lobby",
        "from": "alice",
        "text": "hello all",
        "ts": ack["ts"],
    }
    for client in (alice, bob, carol):
        assert_has(await client.next("message"), expected)


async def test_the_sender_gets_its_own_message_exactly_once(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("message", {"room": "lobby", "text": "echo"}))
    await alice.next("message")
    await alice.no_event("message", within=0.3)


async def test_message_does_not_reach_connections_outside_the_room(
    chat_url: str, connect: Connect
) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(alice, "lobby")
    await join(bob, "dev")
    expect_ok(await alice.call("message", {"room": "lobby", "text": "lobby only"}))
    await bob.no_event("message", within=0.3)


async def test_message_reaches_only_the_users_connections_that_joined(
    chat_url: str, connect: Connect
) -> None:
    joined, other_tab = await connect(chat_url, "alice"), await connect(chat_url, "alice")
    await join(joined, "lobby")
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    expect_ok(await bob.call("message", {"room": "lobby", "text": "hi alice"}))
    assert (await joined.next("message"))["text"] == "hi alice"
    await other_tab.no_event("message", within=0.3)


async def test_message_to_a_room_not_joined_answers_not_in_room(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    expect_error(await alice.call("message", {"room": "lobby", "text": "hi"}), "not_in_room")


async def test_a_refused_message_reaches_nobody(chat_url: str, connect: Connect) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(bob, "lobby")
    expect_error(await alice.call("message", {"room": "lobby", "text": "sneaky"}), "not_in_room")
    await bob.no_event("message", within=0.3)
    assert (await join(bob, "lobby"))["history"] == []


async def test_message_after_leaving_answers_not_in_room(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    expect_error(await alice.call("message", {"room": "lobby", "text": "hi"}), "not_in_room")


async def test_being_in_another_room_does_not_allow_sending_here(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "dev")
    expect_error(await alice.call("message", {"room": "lobby", "text": "hi"}), "not_in_room")


async def test_text_is_trimmed_of_surrounding_white_space(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("message", {"room": "lobby", "text": " \t\n  hi there \r\n "}))
    assert (await alice.next("message"))["text"] == "hi there"


async def test_unicode_white_space_around_the_text_is_trimmed_too(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("message", {"room": "lobby", "text": "\u00a0\u3000hi\u2003\u00a0"}))
    assert (await alice.next("message"))["text"] == "hi"


async def test_inner_white_space_is_kept_exactly(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    text = "line one\n\n  line  two\tend"
    expect_ok(await alice.call("message", {"room": "lobby", "text": text}))
    assert (await alice.next("message"))["text"] == text


async def test_markup_is_delivered_as_data_unescaped(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    text = "<script>alert('x')</script> & <b>bold</b> &amp; \"quoted\""
    expect_ok(await alice.call("message", {"room": "lobby", "text": text}))
    assert (await alice.next("message"))["text"] == text


async def test_unicode_text_is_delivered_exactly(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    text = "héllo wörld, 你好, مرحبا, e\u0301, \U0001f600\u200d\U0001f4bb, \u2028x"
    expect_ok(await alice.call("message", {"room": "lobby", "text": text}))
    assert (await alice.next("message"))["text"] == text


async def test_ids_of_a_room_are_unique_fixed_width_and_sorted_in_send_order(
    chat_url: str, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    ids = [
        expect_ok(await alice.call("message", {"room": "lobby", "text": f"m{i}"}))["id"]
        for i in range(30)
    ]
    assert len(set(ids)) == len(ids)
    assert len({len(i) for i in ids}) == 1
    assert sorted(ids) == ids


async def test_ids_are_unique_across_rooms(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    rooms = ["r1", "r2", "r3"]
    for room in rooms:
        await join(alice, room)
    acks = await asyncio.gather(
        *(
            alice.call("message", {"room": room, "text": str(i)})
            for i in range(10)
            for room in rooms
        )
    )
    ids = [expect_ok(ack)["id"] for ack in acks]
    assert len(set(ids)) == len(ids)


async def test_ts_never_goes_back_within_a_room(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    stamps = [
        expect_ok(await alice.call("message", {"room": "lobby", "text": "t"}))["ts"]
        for _ in range(20)
    ]
    assert stamps == sorted(stamps)


async def test_messages_arrive_in_the_order_they_were_sent(
    chat_url: str, connect: Connect
) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(alice, "lobby")
    await join(bob, "lobby")
    for i in range(25):
        expect_ok(await alice.call("message", {"room": "lobby", "text": f"n{i}"}))
    assert [(await bob.next("message"))["text"] for _ in range(25)] == [f"n{i}" for i in range(25)]


async def test_messages_sent_at_once_are_all_acked_and_delivered(
    chat_url: str, connect: Connect
) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(alice, "lobby")
    await join(bob, "lobby")
    acks = await asyncio.gather(
        *(alice.call("message", {"room": "lobby", "text": f"b{i}"}) for i in range(50))
    )
    ids = {expect_ok(ack)["id"] for ack in acks}
    received = {(await bob.next("message"))["id"] for _ in range(50)}
    assert received == ids
