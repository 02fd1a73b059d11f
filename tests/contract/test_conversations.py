"""The ``conversations`` event: a user's private conversations, most recent first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_server.config import Settings
from chat_server.stores.directory import MemoryDirectory
from tests.support.chat import expect_error, expect_ok
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A single-process server, once with in-memory stores and once over Redis."""
    return await start_server(backend_settings())


async def send(client: ChatClient, to: str, text: str) -> dict[str, Any]:
    return expect_ok(await client.call("private_message", {"to": to, "text": text}))


async def conversations(client: ChatClient, **payload: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = expect_ok(await client.call("conversations", payload))[
        "conversations"
    ]
    return found


async def test_a_user_with_no_private_messages_has_no_conversations(
    url: str, connect: Connect
) -> None:
    assert await conversations(await connect(url, "alice")) == []


async def test_conversations_list_partners_newest_first_with_their_last_message(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await send(alice, "bob", "first")
    await send(alice, "carol", "second")
    last = await send(alice, "bob", "third")
    found = await conversations(alice)
    assert [c["with"] for c in found] == ["bob", "carol"]
    assert found[0]["last"]["id"] == last["id"]
    assert found[0]["last"]["text"] == "third"


async def test_a_recipient_finds_a_conversation_started_while_offline(
    url: str, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await send(alice, "dave", "are you there?")
    dave = await connect(url, "dave")
    found = await conversations(dave)
    assert [(c["with"], c["last"]["text"]) for c in found] == [("alice", "are you there?")]


async def test_conversations_honour_the_limit(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    for name in ("u1", "u2", "u3"):
        await send(alice, name, "hi")
    assert [c["with"] for c in await conversations(alice, limit=2)] == ["u3", "u2"]


async def test_conversations_refuse_a_bad_limit(url: str, connect: Connect) -> None:
    alice = await connect(url, "alice")
    expect_error(await alice.call("conversations", {"limit": 0}), "invalid", "limit")
    expect_error(await alice.call("conversations", {"limit": "5"}), "invalid", "limit")
    expect_error(await alice.call("conversations", {"other": 1}), "invalid", "other")


async def test_the_memory_directory_forgets_the_oldest_beyond_its_cap() -> None:
    directory = MemoryDirectory()
    for i in range(1001):
        await directory.touch("alice", f"u{i}", i)
    partners = await directory.partners("alice", 2000)
    assert len(partners) == 1000
    assert partners[0] == "u1000" and "u0" not in partners
