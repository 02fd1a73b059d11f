"""Private messages: delivery to every connection of both users, and the conversation's history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_server.config import Settings
from tests.support.chat import assert_has, expect_error, expect_ok, now_ms
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A single-process server, once with in-memory stores and once over Redis."""
    return await start_server(backend_settings())


async def send(client: ChatClient, to: str, text: str) -> dict[str, Any]:
    return expect_ok(await client.call("private_message", {"to": to, "text": text}))


async def test_private_message_answers_ok_with_id_and_ts(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await connect(url, "bob")
    before = now_ms()
    ack = await send(alice, "bob", "psst")
    assert isinstance(ack["id"], str)
    assert type(ack["ts"]) is int
    assert before - 1000 <= ack["ts"] <= now_ms() + 1000


async def test_the_recipient_gets_id_from_to_text_and_ts(url: str, connect: Connect) -> None:
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    ack = await send(alice, "bob", "psst")
    assert_has(
        await bob.next("private_message"),
        {"id": ack["id"], "from": "alice", "to": "bob", "text": "psst", "ts": ack["ts"]},
    )


async def test_the_sender_gets_its_own_private_message(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await connect(url, "bob")
    ack = await send(alice, "bob", "psst")
    received = await alice.next("private_message")
    assert received["id"] == ack["id"]
    assert (received["from"], received["to"]) == ("alice", "bob")


async def test_every_connection_of_sender_and_recipient_gets_it_once(
    url: str, connect: Connect
) -> None:
    alices = [await connect(url, "alice") for _ in range(2)]
    bobs = [await connect(url, "bob") for _ in range(2)]
    ack = await send(alices[0], "bob", "to all tabs")
    for client in alices + bobs:
        assert (await client.next("private_message"))["id"] == ack["id"]
    for client in alices + bobs:
        await client.no_event("private_message", within=0.2)


async def test_nobody_else_gets_the_private_message(url: str, connect: Connect) -> None:
    alice, carol = await connect(url, "alice"), await connect(url, "carol")
    await connect(url, "bob")
    await send(alice, "bob", "secret")
    await carol.no_event("private_message", within=0.3)


async def test_private_messages_need_no_shared_room(url: str, connect: Connect) -> None:
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    expect_ok(await alice.call("join", {"room": "lobby"}))
    expect_ok(await bob.call("join", {"room": "dev"}))
    await send(alice, "bob", "hi")
    assert (await bob.next("private_message"))["text"] == "hi"


async def test_private_messages_never_reach_a_room(url: str, connect: Connect) -> None:
    alice, carol = await connect(url, "alice"), await connect(url, "carol")
    for client in (alice, carol):
        expect_ok(await client.call("join", {"room": "lobby"}))
    await connect(url, "bob")
    await send(alice, "bob", "hi")
    await carol.no_event("message", within=0.3)


async def test_a_private_message_to_an_offline_user_is_accepted(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await send(alice, "nobody-online", "are you there?")


async def test_an_offline_recipient_reads_the_message_in_history_later(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    ack = await send(alice, "bob", "read me later")
    bob = await connect(url, "bob")
    messages = expect_ok(await bob.call("history", {"with": "alice"}))["messages"]
    assert len(messages) == 1
    assert_has(
        messages[0],
        {"id": ack["id"], "from": "alice", "to": "bob", "text": "read me later", "ts": ack["ts"]},
    )


async def test_both_sides_read_the_same_conversation_oldest_first(
    url: str, connect: Connect
) -> None:
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    ids = [
        (await send(alice, "bob", "1"))["id"],
        (await send(bob, "alice", "2"))["id"],
        (await send(alice, "bob", "3"))["id"],
    ]
    for client, other in ((alice, "bob"), (bob, "alice")):
        messages = expect_ok(await client.call("history", {"with": other}))["messages"]
        assert [m["id"] for m in messages] == ids
        assert [m["text"] for m in messages] == ["1", "2", "3"]
        assert [(m["from"], m["to"]) for m in messages] == [
            ("alice", "bob"),
            ("bob", "alice"),
            ("alice", "bob"),
        ]


async def test_conversations_are_kept_apart(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    await send(alice, "bob", "for bob")
    await send(alice, "carol", "for carol")
    carol = await connect(url, "carol")
    messages = expect_ok(await carol.call("history", {"with": "alice"}))["messages"]
    assert [m["text"] for m in messages] == ["for carol"]


async def test_a_third_user_cannot_read_someone_elses_conversation(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await send(alice, "bob", "between us")
    mallory = await connect(url, "mallory")
    for other in ("alice", "bob"):
        messages = expect_ok(await mallory.call("history", {"with": other}))["messages"]
        assert messages == []


async def test_private_ids_are_sorted_in_send_order(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    ids = [(await send(alice, "bob", f"m{i}"))["id"] for i in range(15)]
    assert len(set(ids)) == 15
    assert sorted(ids) == ids


async def test_private_text_is_trimmed_and_otherwise_kept(url: str, connect: Connect) -> None:
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    await send(alice, "bob", "  <i>a & b</i>\n")
    assert (await bob.next("private_message"))["text"] == "<i>a & b</i>"


async def test_a_private_message_to_oneself_reaches_each_connection_once(
    url: str, connect: Connect
) -> None:
    tabs = [await connect(url, "alice") for _ in range(2)]
    ack = await send(tabs[0], "alice", "note to self")
    for tab in tabs:
        assert (await tab.next("private_message"))["id"] == ack["id"]
        await tab.no_event("private_message", within=0.2)


async def test_a_private_message_to_an_invalid_username_answers_invalid(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    ack = await alice.call("private_message", {"to": "not a user!", "text": "hi"})
    expect_error(ack, "invalid", "to")
