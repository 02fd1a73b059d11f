"""``Idempotency-Key`` on ``POST /api/emit``: replays, conflicts, bad keys, memory and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from chat_server.config import Settings
from chat_server.core.auth import issue_token
from chat_server.stores.idempotency import MemoryIdempotency
from tests.contract.test_rest import AUTH, assert_error, assert_invalid, get_room, post
from tests.support.chat import join
from tests.support.fixtures import Connect, StartServer

SECRET = "idempotency-test-secret-" + "i" * 32
BOT = {"Authorization": f"Bearer {issue_token(SECRET, 'helper', 3600, bot=True)}"}


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A server with the API key and bot tokens, memory or Redis."""
    return await start_server(backend_settings(secret=SECRET))


def fresh_key() -> str:
    """An Idempotency-Key no other test (nor an earlier run on the same Redis) used."""
    return f"k-{uuid.uuid4()}"


def keyed(key: str, auth: dict[str, str] = AUTH) -> dict[str, str]:
    return {**auth, "Idempotency-Key": key}


async def history_of(http: aiohttp.ClientSession, url: str, room: str) -> list[Any]:
    status, body = await get_room(http, url, room)
    assert status == 200, body
    messages: list[Any] = body["history"]
    return messages


async def test_a_repeat_answers_the_first_answer_and_delivers_nothing(
    url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    room, key = f"r{uuid.uuid4().hex[:8]}", fresh_key()
    body = {"room": room, "text": "once"}
    status, first, response = await post(http, url, body, keyed(key))
    assert status == 200, first
    assert "Idempotent-Replayed" not in response.headers
    alice = await connect(url, auth={"token": issue_token(SECRET, "alice", 600)})
    await join(alice, room)
    status, again, response = await post(http, url, body, keyed(key))
    assert (status, again) == (200, first)
    assert response.headers["Idempotent-Replayed"] == "true"
    await alice.no_event("message", within=0.3)
    assert [m["id"] for m in await history_of(http, url, room)] == [first["id"]]


async def test_the_same_body_with_other_spacing_and_key_order_is_a_replay(
    url: str, http: aiohttp.ClientSession
) -> None:
    key = fresh_key()
    _, first, _ = await post(http, url, '{"room": "lobby", "text": "a"}', keyed(key))
    status, again, response = await post(http, url, '{"text":"a","room":"lobby"}', keyed(key))
    assert (status, again, response.headers["Idempotent-Replayed"]) == (200, first, "true")


@pytest.mark.parametrize(
    "second",
    [
        {"room": "lobby", "text": "other"},
        {"room": "dev", "text": "same"},
        {"to": "bob", "text": "same"},
    ],
    ids=["other-text", "other-room", "other-target"],
)
async def test_the_same_key_with_another_body_is_409_and_delivers_nothing(
    url: str, http: aiohttp.ClientSession, second: dict[str, Any]
) -> None:
    key = fresh_key()
    await post(http, url, {"room": "lobby", "text": "same"}, keyed(key))
    before = await history_of(http, url, "dev")
    status, body, _ = await post(http, url, second, keyed(key))
    assert_error(status, body, 409, "conflict")
    assert await history_of(http, url, "dev") == before


async def test_keys_are_per_credential(url: str, http: aiohttp.ClientSession) -> None:
    key, body = fresh_key(), {"room": "lobby", "text": "mine"}
    _, by_key, _ = await post(http, url, body, keyed(key))
    status, by_bot, response = await post(http, url, body, keyed(key, BOT))
    assert status == 200, by_bot
    assert by_bot["id"] != by_key["id"]
    assert "Idempotent-Replayed" not in response.headers


async def test_a_refused_request_keeps_no_answer(url: str, http: aiohttp.ClientSession) -> None:
    key = fresh_key()
    status, _, _ = await post(http, url, {"broadcast": True, "text": "no"}, keyed(key, BOT))
    assert status == 403
    status, body, response = await post(
        http, url, {"room": "lobby", "text": "ok"}, keyed(key, BOT)
    )
    assert status == 200, body
    assert "Idempotent-Replayed" not in response.headers


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "has space", "tab\there", "caf\u00e9"],
    ids=["empty", "256-chars", "space", "control", "non-ascii"],
)
async def test_a_bad_idempotency_key_is_400_naming_the_header(
    url: str, http: aiohttp.ClientSession, key: str
) -> None:
    headers = {**AUTH, "Idempotency-Key": key}
    try:
        status, body, _ = await post(http, url, {"room": "lobby", "text": "x"}, headers)
    except ValueError:
        pytest.skip("the client refuses to send this header value at all")
    assert_invalid(status, body, "Idempotency-Key")


async def test_a_255_character_key_is_accepted(url: str, http: aiohttp.ClientSession) -> None:
    key = ("k" + uuid.uuid4().hex + "~" * 255)[:255]
    status, body, _ = await post(http, url, {"room": "lobby", "text": "x"}, keyed(key))
    assert status == 200, body


async def test_the_memory_store_stays_bounded() -> None:
    store = MemoryIdempotency(limit=3)
    for n in range(5):
        assert await store.claim(f"k{n}", "fp", 600) is None
    # The two oldest went; the newest three are still claimed.
    assert await store.claim("k0", "fp", 600) is None
    assert await store.claim("k4", "fp", 600) == {"fingerprint": "fp", "answer": None}


async def test_a_memory_entry_expires() -> None:
    now = [0.0]
    store = MemoryIdempotency(clock=lambda: now[0])
    await store.complete("k", "fp", {"ok": True}, 600)
    assert await store.claim("k", "other", 600) == {"fingerprint": "fp", "answer": {"ok": True}}
    now[0] = 601.0
    assert await store.claim("k", "other", 600) is None
