"""The REST room administration: create, members, bans, and GET /api/rooms/{room} with info."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.contract.test_rest import AUTH, assert_error, assert_invalid, get_room
from tests.support.chat import assert_has, expect_error, http_call, join
from tests.support.fixtures import Connect


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, headers: Any = AUTH
) -> tuple[int, Any]:
    return await http_call(http, method, url, body, headers)


async def test_post_rooms_creates_once_with_201_then_409(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    body = {"room": "team", "owner": "olga", "private": True, "topic": "plans"}
    status, reply = await call(http, "POST", f"{chat_url}/api/rooms", body)
    assert status == 201, reply
    assert_has(reply["room"], {"name": "team", "owner": "olga", "private": True})
    assert reply["room"]["members"] == ["olga"]
    status, reply = await call(http, "POST", f"{chat_url}/api/rooms", body)
    assert_error(status, reply, 409, "room_exists")
    status, reply = await get_room(http, chat_url, "team")
    assert status == 200 and reply["info"]["owner"] == "olga"


async def test_post_rooms_checks_the_key_and_the_body(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    status, reply = await call(http, "POST", f"{chat_url}/api/rooms", {"room": "x"}, headers={})
    assert_error(status, reply, 401, "unauthorized")
    status, reply = await call(http, "POST", f"{chat_url}/api/rooms", {"room": "x"})
    assert_invalid(status, reply, "owner")
    body = {"room": "x", "owner": "olga", "topic": "t" * 201}
    assert_invalid(*await call(http, "POST", f"{chat_url}/api/rooms", body), "topic")
    status, reply = await call(http, "POST", f"{chat_url}/api/rooms", [1])
    assert_invalid(status, reply, "_schema")


async def test_members_and_bans_over_rest_reach_the_users(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    body = {"room": "team", "owner": "olga", "private": True}
    await call(http, "POST", f"{chat_url}/api/rooms", body)
    bob = await connect(chat_url, "bob")
    expect_error(await bob.call("join", {"room": "team"}), "forbidden")
    status, _ = await call(http, "POST", f"{chat_url}/api/rooms/team/members", {"user": "bob"})
    assert status == 200
    assert_has(await bob.next("invited"), {"room": "team", "by": "@api"})
    await join(bob, "team")
    status, _ = await call(http, "DELETE", f"{chat_url}/api/rooms/team/members/bob")
    assert status == 200
    assert_has(await bob.next("kicked"), {"room": "team", "by": "@api", "reason": ""})
    expect_error(await bob.call("join", {"room": "team"}), "forbidden")
    ban = {"user": "bob", "seconds": 60, "reason": "spam"}
    assert (await call(http, "POST", f"{chat_url}/api/rooms/team/bans", ban))[0] == 200
    await call(http, "POST", f"{chat_url}/api/rooms/team/members", {"user": "bob"})
    expect_error(await bob.call("join", {"room": "team"}), "banned")
    assert (await call(http, "DELETE", f"{chat_url}/api/rooms/team/bans/bob"))[0] == 200
    await join(bob, "team")


async def test_rest_refusals_have_their_status(chat_url: str, http: aiohttp.ClientSession) -> None:
    await call(http, "POST", f"{chat_url}/api/rooms", {"room": "team", "owner": "olga"})
    status, reply = await call(http, "DELETE", f"{chat_url}/api/rooms/team/members/olga")
    assert_error(status, reply, 403, "forbidden")
    bad = {"user": "bob", "seconds": -5}
    assert_invalid(*await call(http, "POST", f"{chat_url}/api/rooms/team/bans", bad), "seconds")
    status, reply = await get_room(http, chat_url, "lobby")
    assert status == 200 and reply["info"]["owner"] is None
