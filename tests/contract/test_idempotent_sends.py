"""``client_id``: a retried send is answered as the first and stored and delivered once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chat_server.config import Settings
from tests.support.chat import expect_error, expect_ok, join, unique
from tests.support.fixtures import Connect, StartServer


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A single-process server, once with in-memory stores and once over Redis."""
    return await start_server(backend_settings())


def room_message(room: str, client_id: str, text: str = "hi") -> dict[str, Any]:
    return {"room": room, "text": text, "client_id": client_id}


async def history(client: Any, **where: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = expect_ok(await client.call("history", where))["messages"]
    return messages


async def test_a_retry_with_the_same_client_id_gets_the_first_ack(
    url: str, connect: Connect
) -> None:
    alice, room, cid = await connect(url, "alice"), unique("room"), unique("c")
    await join(alice, room)
    first = expect_ok(await alice.call("message", room_message(room, cid)))
    again = expect_ok(await alice.call("message", room_message(room, cid)))
    assert (again["id"], again["ts"]) == (first["id"], first["ts"])


async def test_a_retry_is_stored_and_delivered_only_once(url: str, connect: Connect) -> None:
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    room, cid = unique("room"), unique("c")
    await join(alice, room)
    await join(bob, room)
    expect_ok(await alice.call("message", room_message(room, cid)))
    await bob.next("message")
    expect_ok(await alice.call("message", room_message(room, cid)))
    await bob.no_event("message", within=0.3)
    assert len(await history(alice, room=room)) == 1


async def test_a_retry_matches_by_user_and_client_id_whatever_its_payload(
    url: str, connect: Connect
) -> None:
    alice, room, other, cid = await connect(url, "alice"), unique("r"), unique("r"), unique("c")
    await join(alice, room)
    await join(alice, other)
    first = expect_ok(await alice.call("message", room_message(room, cid, "one")))
    again = expect_ok(await alice.call("message", room_message(other, cid, "two")))
    assert again["id"] == first["id"]
    assert await history(alice, room=other) == []


async def test_a_retry_from_another_connection_of_the_same_user_is_a_replay(
    url: str, connect: Connect
) -> None:
    tab, other_tab = await connect(url, "alice"), await connect(url, "alice")
    room, cid = unique("room"), unique("c")
    await join(tab, room)
    await join(other_tab, room)
    first = expect_ok(await tab.call("message", room_message(room, cid)))
    again = expect_ok(await other_tab.call("message", room_message(room, cid)))
    assert again["id"] == first["id"]


async def test_the_same_client_id_from_another_user_is_a_new_message(
    url: str, connect: Connect
) -> None:
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    room, cid = unique("room"), unique("c")
    await join(alice, room)
    await join(bob, room)
    first = expect_ok(await alice.call("message", room_message(room, cid)))
    second = expect_ok(await bob.call("message", room_message(room, cid)))
    assert second["id"] != first["id"]


async def test_racing_retries_store_exactly_once(url: str, connect: Connect) -> None:
    alice, room, cid = await connect(url, "alice"), unique("room"), unique("c")
    await join(alice, room)
    acks = await asyncio.gather(
        *(alice.call("message", room_message(room, cid)) for _ in range(10))
    )
    assert len({expect_ok(ack)["id"] for ack in acks}) == 1
    assert len(await history(alice, room=room)) == 1


async def test_the_delivered_message_and_its_history_entry_carry_the_client_id(
    url: str, connect: Connect
) -> None:
    alice, room, cid = await connect(url, "alice"), unique("room"), unique("c")
    await join(alice, room)
    expect_ok(await alice.call("message", room_message(room, cid)))
    assert (await alice.next("message"))["client_id"] == cid
    assert [m["client_id"] for m in await history(alice, room=room)] == [cid]


async def test_a_message_without_a_client_id_carries_none(url: str, connect: Connect) -> None:
    alice, room = await connect(url, "alice"), unique("room")
    await join(alice, room)
    expect_ok(await alice.call("message", {"room": room, "text": "plain"}))
    assert "client_id" not in await alice.next("message")


async def test_a_private_message_retry_is_delivered_and_indexed_once(
    url: str, connect: Connect
) -> None:
    alice, bob, cid = await connect(url, "alice"), await connect(url, "bob"), unique("c")
    payload = {"to": "bob", "text": "psst", "client_id": cid}
    first = expect_ok(await alice.call("private_message", payload))
    delivered = await bob.next("private_message")
    assert (delivered["id"], delivered["client_id"]) == (first["id"], cid)
    again = expect_ok(await alice.call("private_message", payload))
    assert again["id"] == first["id"]
    await bob.no_event("private_message", within=0.3)
    kept = await history(alice, **{"with": "bob"})
    assert [m["id"] for m in kept].count(first["id"]) == 1


BAD_CLIENT_IDS = {
    "65 characters": "x" * 65,
    "a space": "a b",
    "empty": "",
    "a colon": "a:b",
    "not a string": 7,
}


@pytest.mark.parametrize("client_id", BAD_CLIENT_IDS.values(), ids=BAD_CLIENT_IDS.keys())
@pytest.mark.parametrize("event", ["message", "private_message"])
async def test_a_malformed_client_id_is_invalid(
    chat_url: str, connect: Connect, event: str, client_id: Any
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    target = {"room": "lobby"} if event == "message" else {"to": "bob"}
    ack = await alice.call(event, {**target, "text": "hi", "client_id": client_id})
    expect_error(ack, "invalid", "client_id")


async def test_a_client_id_of_64_characters_is_accepted(chat_url: str, connect: Connect) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("message", room_message("lobby", "A-_9" * 16)))
