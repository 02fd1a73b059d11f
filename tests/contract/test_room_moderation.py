"""Rooms that belong to someone, over real Socket.IO clients in one process."""

from __future__ import annotations

from typing import Any

import jwt

from tests.contract.test_cli import run
from tests.support.chat import assert_has, expect_error, expect_ok, join, make_token
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, MakeSettings, StartServer


async def private_team(chat_url: str, connect: Connect) -> tuple[ChatClient, ChatClient]:
    """Olga's private room ``team`` with olga in it, and bob invited and in it."""
    olga, bob = await connect(chat_url, "olga"), await connect(chat_url, "bob")
    reply = expect_ok(
        await olga.call("create_room", {"room": "team", "private": True, "topic": "plans"})
    )
    assert reply["room"] == {
        "name": "team",
        "private": True,
        "topic": "plans",
        "owner": "olga",
        "moderators": [],
        "created_ts": reply["room"]["created_ts"],
        "members": ["olga"],
    }
    await join(olga, "team")
    expect_ok(await olga.call("invite", {"room": "team", "user": "bob"}))
    assert_has(await bob.next("invited"), {"room": "team", "by": "olga"})
    await join(bob, "team")
    return olga, bob


async def test_a_private_room_refuses_an_outsider_everything(
    chat_url: str, connect: Connect
) -> None:
    olga, _ = await private_team(chat_url, connect)
    expect_ok(await olga.call("message", {"room": "team", "text": "secret"}))
    eve = await connect(chat_url, "eve")
    expect_error(await eve.call("join", {"room": "team"}), "forbidden")
    expect_error(await eve.call("history", {"room": "team"}), "forbidden")
    expect_error(await eve.call("room_info", {"room": "team"}), "forbidden")
    expect_error(await eve.call("typing", {"room": "team"}), "not_in_room")
    await eve.no_event("presence", within=0.3)


async def test_a_room_is_created_once(chat_url: str, connect: Connect) -> None:
    await private_team(chat_url, connect)
    eve = await connect(chat_url, "eve")
    expect_error(await eve.call("create_room", {"room": "team"}), "room_exists")
    await join(eve, "lobby")
    expect_error(await eve.call("create_room", {"room": "lobby"}), "room_exists")


async def test_a_room_nobody_created_behaves_as_before(chat_url: str, connect: Connect) -> None:
    eve = await connect(chat_url, "eve")
    info = expect_ok(await eve.call("room_info", {"room": "lobby"}))["room"]
    assert info["owner"] is None and info["created_ts"] is None and info["private"] is False
    await join(eve, "lobby")
    expect_error(await eve.call("set_topic", {"room": "lobby", "topic": "x"}), "forbidden")


async def test_a_kick_takes_every_connection_out_with_presence_and_kicked(
    chat_url: str, connect: Connect
) -> None:
    olga, bob = await private_team(chat_url, connect)
    second = await connect(chat_url, "bob")
    await join(second, "team")
    expect_ok(await olga.call("kick", {"room": "team", "user": "bob", "reason": "spam"}))
    for client in (bob, second):
        assert_has(await client.next("kicked"), {"room": "team", "by": "olga", "reason": "spam"})
        expect_error(await client.call("message", {"room": "team", "text": "x"}), "not_in_room")
    assert_has(
        await olga.next_where("presence", lambda p: p["action"] == "leave"),
        {"room": "team", "user": "bob"},
    )
    expect_error(await bob.call("join", {"room": "team"}), "forbidden")


async def test_a_ban_refuses_the_next_join_with_banned_until_unban(
    chat_url: str, connect: Connect
) -> None:
    olga = await connect(chat_url, "olga")
    expect_ok(await olga.call("create_room", {"room": "open"}))
    eve = await connect(chat_url, "eve")
    await join(eve, "open")
    expect_ok(await olga.call("ban", {"room": "open", "user": "eve", "seconds": 60}))
    assert_has(await eve.next("kicked"), {"room": "open", "by": "olga", "reason": ""})
    expect_error(await eve.call("join", {"room": "open"}), "banned")
    expect_ok(await olga.call("unban", {"room": "open", "user": "eve"}))
    await join(eve, "open")


async def test_topic_and_role_changes_reach_the_room(chat_url: str, connect: Connect) -> None:
    olga, bob = await private_team(chat_url, connect)
    reply = expect_ok(
        await olga.call("set_role", {"room": "team", "user": "bob", "role": "moderator"})
    )
    assert reply["room"]["moderators"] == ["bob"]
    assert (await bob.next("room_updated"))["moderators"] == ["bob"]
    expect_ok(await bob.call("set_topic", {"room": "team", "topic": "new"}))
    assert (await olga.next_where("room_updated", lambda i: i["topic"] == "new"))["name"] == "team"
    expect_error(await bob.call("kick", {"room": "team", "user": "olga"}), "forbidden")


async def test_bad_room_payloads_answer_invalid_with_fields(
    chat_url: str, connect: Connect
) -> None:
    olga, _ = await private_team(chat_url, connect)
    cases = [
        ("set_topic", {"room": "team", "topic": "x" * 201}, "topic"),
        ("set_role", {"room": "team", "user": "bob", "role": "king"}, "role"),
        ("ban", {"room": "team", "user": "bob", "seconds": -1}, "seconds"),
        ("ban", {"room": "team", "user": "bob", "seconds": 10**12}, "seconds"),
        ("create_room", {"room": "x", "private": "yes"}, "private"),
        ("invite", {"room": "team", "user": "not a name"}, "user"),
    ]
    for event, payload, field in cases:
        expect_error(await olga.call(event, payload), "invalid", field)


# -- admins: the token claim admin: true -----------------------------------------------

ADMIN_SECRET = "room-admin-secret-" + "s" * 32


def test_the_token_command_with_admin_adds_the_claim() -> None:
    token = run(["token", "root", "--admin"], {"CHAT_SECRET": ADMIN_SECRET}).stdout.strip()
    assert jwt.decode(token, ADMIN_SECRET, algorithms=["HS256"])["admin"] is True
    plain = run(["token", "root"], {"CHAT_SECRET": ADMIN_SECRET}).stdout.strip()
    assert "admin" not in jwt.decode(plain, ADMIN_SECRET, algorithms=["HS256"])


async def test_an_admin_token_moderates_every_room(
    start_server: StartServer, make_settings: MakeSettings, connect: Connect
) -> None:
    url = await start_server(make_settings(secret=ADMIN_SECRET))

    def auth(user: str, **claims: Any) -> dict[str, Any]:
        return {"auth": {"token": make_token(ADMIN_SECRET, user, **claims)}}

    olga = await connect(url, **auth("olga"))
    expect_ok(await olga.call("create_room", {"room": "team", "private": True}))
    await join(olga, "team")
    root = await connect(url, **auth("root", admin=True))
    fake = await connect(url, **auth("eve", admin="yes"))
    expect_error(await fake.call("join", {"room": "team"}), "forbidden")
    await join(root, "team")
    expect_ok(await root.call("set_topic", {"room": "team", "topic": "by an admin"}))
    expect_ok(await root.call("set_role", {"room": "team", "user": "bob", "role": "moderator"}))
    expect_error(await root.call("kick", {"room": "team", "user": "olga"}), "forbidden")
    expect_ok(await root.call("ban", {"room": "lobby", "user": "eve"}))
    expect_error(await fake.call("join", {"room": "lobby"}), "banned")
