"""Small assertions and builders that most chat tests share."""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp
import jwt

from tests.support.clients import ChatClient
from tests.support.fixtures import Connect

__all__ = [
    "assert_has",
    "expect_error",
    "expect_ok",
    "join",
    "make_token",
    "now_ms",
    "owned_room",
    "unique",
]


def unique(prefix: str = "x") -> str:
    """A fresh name (valid as a username and as a room) for tests sharing one server."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_has(actual: Any, expected: dict[str, Any]) -> None:
    """Assert ``actual`` is an object holding every member of ``expected``.

    The contract lets the server add fields to any payload, so tests check the
    members it promises rather than equality.
    """
    assert isinstance(actual, dict), actual
    missing = {k: v for k, v in expected.items() if k not in actual or actual[k] != v}
    assert not missing, f"{actual!r} lacks or differs in {missing!r}"


def expect_ok(ack: Any) -> dict[str, Any]:
    """Assert ``ack`` is ``{ok: true, ...}`` and return it."""
    assert isinstance(ack, dict), ack
    assert ack.get("ok") is True, ack
    return ack


def expect_error(ack: Any, code: str, *fields: str) -> dict[str, Any]:
    """Assert ``ack`` is ``{ok: false, error: {code, message, ...}}``; return the error.

    Each name in ``fields`` must appear in ``error.fields`` with a list of
    message strings (marshmallow's format).
    """
    assert isinstance(ack, dict), ack
    assert ack.get("ok") is False, ack
    error = ack.get("error")
    assert isinstance(error, dict), ack
    assert error.get("code") == code, ack
    assert isinstance(error.get("message"), str), ack
    assert error["message"], ack
    for name in fields:
        assert isinstance(error.get("fields"), dict), ack
        messages = error["fields"].get(name)
        assert isinstance(messages, list), ack
        assert messages, ack
        assert all(isinstance(m, str) and m for m in messages), ack
    return error


async def join(client: ChatClient, room: str, **extra: Any) -> dict[str, Any]:
    """Join ``room`` and return the successful ack."""
    return expect_ok(await client.call("join", {"room": room, **extra}))


def make_token(
    secret: str,
    sub: Any = "alice",
    *,
    ttl: float | None = 3600,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    """A JWT with ``sub`` and (unless ``ttl`` is None) ``exp`` = now + ``ttl``."""
    payload: dict[str, Any] = {}
    if sub is not None:
        payload["sub"] = sub
    if ttl is not None:
        payload["exp"] = int(time.time() + ttl)
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm=algorithm)


async def owned_room(connect: Connect, url: str, **settings: Any) -> tuple[ChatClient, str, str]:
    """A new room created on ``url`` by a new owner (``settings`` go to ``create_room``).

    Returns the owner's client, the room's name and the owner's name.
    """
    room, owner = unique("room"), unique("olga")
    client = await connect(url, owner)
    expect_ok(await client.call("create_room", {"room": room, **settings}))
    return client, room, owner


async def alice_and_bob_in_a_room(
    urls: tuple[str, str], connect: Connect
) -> tuple[ChatClient, ChatClient, str, dict[str, Any]]:
    """Alice on the first server and Bob on the second, in a new room; Bob heard Alice once.

    Returns both clients, the room, and Alice's first message (heard by Bob).
    """
    room = unique("room")
    alice, bob = await connect(urls[0], "alice"), await connect(urls[1], "bob")
    await join(alice, room)
    await join(bob, room)
    first = expect_ok(await alice.call("message", {"room": room, "text": "before"}))
    await bob.next("message")
    return alice, bob, room, first


async def http_call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``method`` ``url`` with ``body`` as JSON; the status and the JSON answer."""
    async with http.request(method, url, json=body, headers=headers or {}) as response:
        return response.status, await response.json(content_type=None)
