"""POST /api/users/{user}/disconnect: an administrator closes a user's connections, or bans it."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support.chat import http_call, unique
from tests.support.clients import ConnectRefused
from tests.support.fixtures import Connect


async def remove(
    http: aiohttp.ClientSession, url: str, user: str, *args: Any, **kwargs: Any
) -> tuple[int, Any]:
    """POST ``/api/users/{user}/disconnect`` (``body``, ``headers`` as for ``http_call``)."""
    return await http_call(http, "POST", f"{url}/api/users/{user}/disconnect", *args, **kwargs)


async def test_every_connection_of_the_user_is_closed_and_counted(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    alice = unique("alice")
    tabs = [await connect(chat_url, alice) for _ in range(2)]
    status, body = await remove(http, chat_url, alice, headers=api_headers)
    assert (status, body) == (200, {"ok": True, "user": alice, "disconnected": 2})
    for tab in tabs:
        await tab.wait_disconnected(timeout=1)


async def test_other_users_stay_connected(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    bob = await connect(chat_url, unique("bob"))
    await remove(http, chat_url, unique("alice"), headers=api_headers)
    assert (await bob.call("history", {"room": "lobby"}))["ok"] is True


async def test_the_client_is_told_why_and_gets_a_server_side_disconnect(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    alice = unique("alice")
    client = await connect(chat_url, alice)
    await remove(http, chat_url, alice, {"ban_seconds": 60}, api_headers)
    notice = await client.next("removed", timeout=1)
    assert notice["reason"] == "banned"
    assert notice["ban_seconds"] == 60
    assert notice["message"]
    # The Socket.IO DISCONNECT, not a transport close: clients do not reconnect.
    assert await client.wait_disconnected(timeout=1) == client.sio.reason.SERVER_DISCONNECT


async def test_a_banned_user_is_refused_with_connect_error_banned(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    alice = unique("alice")
    await remove(http, chat_url, alice, {"ban_seconds": 60}, api_headers)
    with pytest.raises(ConnectRefused) as info:
        await connect(chat_url, alice)
    assert info.value.code == "banned"
    assert "banned" in info.value.message


async def test_a_whole_number_written_as_a_float_is_taken_as_an_integer(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    # JSON has one number type: 60.0 is the integer 60 (as JSON Schema and the OpenAPI say).
    alice = unique("alice")
    client = await connect(chat_url, alice)
    status, _ = await remove(http, chat_url, alice, {"ban_seconds": 60.0}, api_headers)
    assert status == 200
    notice = await client.next("removed", timeout=1)
    assert notice["ban_seconds"] == 60
    assert type(notice["ban_seconds"]) is int


async def test_without_ban_seconds_the_user_may_connect_again_at_once(
    chat_url: str, connect: Connect, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    alice = unique("alice")
    await connect(chat_url, alice)
    await remove(http, chat_url, alice, headers=api_headers)
    again = await connect(chat_url, alice)
    assert (await again.next("welcome"))["user"] == alice


async def test_a_user_with_no_connection_answers_zero_disconnected(
    chat_url: str, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    status, body = await remove(http, chat_url, unique("nobody"), headers=api_headers)
    assert (status, body["disconnected"]) == (200, 0)


async def test_without_the_key_it_is_401(chat_url: str, http: aiohttp.ClientSession) -> None:
    status, body = await remove(http, chat_url, "alice")
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


# body, field named in error.fields
INVALID = [
    pytest.param({"ban_seconds": 0}, "ban_seconds", id="zero"),
    pytest.param({"ban_seconds": 2_592_001}, "ban_seconds", id="over-30-days"),
    pytest.param({"ban_seconds": "60"}, "ban_seconds", id="string"),
    pytest.param({"ban_seconds": True}, "ban_seconds", id="boolean"),
    pytest.param({"ban_seconds": 1.5}, "ban_seconds", id="fraction"),
    pytest.param({"ban_seconds": float("inf")}, "ban_seconds", id="infinity"),
    pytest.param({"other": 1}, "other", id="unknown-field"),
    pytest.param([1], "_schema", id="not-an-object"),
]


@pytest.mark.parametrize(("body", "field"), INVALID)
async def test_an_invalid_body_is_400_naming_the_field(
    body: Any, field: str, chat_url: str, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    status, answer = await remove(http, chat_url, "alice", body, api_headers)
    assert status == 400
    assert answer["error"]["code"] == "invalid"
    assert field in answer["error"]["fields"]


async def test_an_invalid_username_in_the_path_is_400(
    chat_url: str, http: aiohttp.ClientSession, api_headers: dict[str, str]
) -> None:
    status, answer = await remove(http, chat_url, "a%20b", headers=api_headers)
    assert status == 400
    assert "user" in answer["error"]["fields"]
