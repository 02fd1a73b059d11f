"""Connecting: guest usernames, token mode, refusals, welcome, several connections per user."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp import AiohttpServer

from chat_server.app import create_app
from chat_server.edges.keys import SOCKETS
from tests.support.chat import expect_ok, make_token
from tests.support.clients import ConnectRefused
from tests.support.fixtures import Connect, StartServer
from tests.support.settings import chat_settings

# 64 bytes, so PyJWT has no key-length warning even for the HS512 case
SECRET = "connect-test-secret-" + "s" * 44


@pytest.fixture
async def token_url(start_server: StartServer, make_settings: Any) -> str:
    """A server in token mode (CHAT_SECRET set)."""
    return await start_server(make_settings(secret=SECRET))


async def refused(connect: Connect, url: str, auth: Any) -> ConnectRefused:
    with pytest.raises(ConnectRefused) as info:
        await connect(url, auth=auth)
    return info.value


# -- guest mode -------------------------------------------------------------------------

VALID_USERNAMES = ["alice", "a", "Z", "7", "A" * 32, "bob_the-2.0", "_", "-", ".", "x.y_z-9"]


@pytest.mark.parametrize("username", VALID_USERNAMES)
async def test_a_valid_guest_username_connects_and_is_welcomed_by_name(
    chat_url: str, connect: Connect, username: str
) -> None:
    client = await connect(chat_url, username)
    assert (await client.next("welcome"))["user"] == username


async def test_welcome_comes_right_after_connecting_and_only_once(
    chat_url: str, connect: Connect
) -> None:
    client = await connect(chat_url, "alice")
    await client.next("welcome")
    await client.no_event("welcome", within=0.3)


INVALID_USERNAMES = [
    pytest.param("", id="empty"),
    pytest.param("A" * 33, id="33-chars"),
    pytest.param("al ice", id="space"),
    pytest.param(" alice", id="leading-space"),
    pytest.param("alice\n", id="newline"),
    pytest.param("alice!", id="bang"),
    pytest.param("a#b", id="hash"),
    pytest.param("a/b", id="slash"),
    pytest.param("a@b", id="at"),
    pytest.param("élodie", id="accented-letter"),
    pytest.param("ñ", id="n-tilde"),
    pytest.param("Ωmega", id="greek"),
    pytest.param("\uff41\uff4c\uff49\uff43\uff45", id="fullwidth"),
    pytest.param("١٢٣", id="arabic-digits"),
    pytest.param("<script>", id="markup"),
]


@pytest.mark.parametrize("username", INVALID_USERNAMES)
async def test_an_invalid_guest_username_is_refused_with_invalid_username(
    chat_url: str, connect: Connect, username: str
) -> None:
    error = await refused(connect, chat_url, {"username": username})
    assert error.code == "invalid_username"


NOT_A_USERNAME = [
    pytest.param(None, id="no-auth"),
    pytest.param({}, id="empty-auth"),
    pytest.param({"name": "alice"}, id="other-key"),
    pytest.param({"username": None}, id="null"),
    pytest.param({"username": 42}, id="number"),
    pytest.param({"username": True}, id="bool"),
    pytest.param({"username": ["alice"]}, id="list"),
    pytest.param({"username": {"name": "alice"}}, id="object"),
    pytest.param("alice", id="auth-is-a-string"),
]


@pytest.mark.parametrize("auth", NOT_A_USERNAME)
async def test_a_missing_or_non_string_username_is_refused_with_invalid_username(
    chat_url: str, connect: Connect, auth: Any
) -> None:
    error = await refused(connect, chat_url, auth)
    assert error.code == "invalid_username"


async def test_a_refusal_carries_a_readable_message(chat_url: str, connect: Connect) -> None:
    error = await refused(connect, chat_url, {"username": "no spaces please"})
    assert isinstance(error.message, str)
    assert len(error.message) > 5


async def test_a_refusal_data_is_an_object_with_the_code(chat_url: str, connect: Connect) -> None:
    error = await refused(connect, chat_url, {"username": ""})
    assert isinstance(error.data, dict)
    assert error.data["code"] == "invalid_username"


async def test_a_token_is_ignored_in_guest_mode(chat_url: str, connect: Connect) -> None:
    token = make_token(SECRET, "mallory")
    client = await connect(chat_url, auth={"username": "alice", "token": token})
    assert (await client.next("welcome"))["user"] == "alice"


# -- token mode ---------------------------------------------------------------------------


async def test_a_valid_token_connects_as_its_sub(token_url: str, connect: Connect) -> None:
    client = await connect(token_url, auth={"token": make_token(SECRET, "alice")})
    assert (await client.next("welcome"))["user"] == "alice"


async def test_a_username_beside_a_token_is_ignored(token_url: str, connect: Connect) -> None:
    auth = {"token": make_token(SECRET, "alice"), "username": "mallory"}
    client = await connect(token_url, auth=auth)
    assert (await client.next("welcome"))["user"] == "alice"


async def test_an_invalid_username_beside_a_valid_token_is_ignored(
    token_url: str, connect: Connect
) -> None:
    auth = {"token": make_token(SECRET, "alice"), "username": "not valid!"}
    client = await connect(token_url, auth=auth)
    assert (await client.next("welcome"))["user"] == "alice"


async def test_messages_from_a_token_user_carry_the_sub_as_sender(
    token_url: str, connect: Connect
) -> None:
    auth = {"token": make_token(SECRET, "alice"), "username": "mallory"}
    client = await connect(token_url, auth=auth)
    expect_ok(await client.call("join", {"room": "lobby"}))
    expect_ok(await client.call("message", {"room": "lobby", "text": "hi"}))
    assert (await client.next("message"))["from"] == "alice"


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(None, id="no-auth"),
        pytest.param({}, id="empty-auth"),
        pytest.param({"username": "alice"}, id="username-only"),
    ],
)
async def test_no_token_is_refused_with_token_required(
    token_url: str, connect: Connect, auth: Any
) -> None:
    error = await refused(connect, token_url, auth)
    assert error.code == "token_required"


BAD_TOKENS = [
    pytest.param("", id="empty"),
    pytest.param("not-a-jwt", id="garbage"),
    pytest.param("a.b.c", id="malformed"),
    pytest.param(make_token("another-secret-" + "o" * 40, "alice"), id="wrong-signature"),
    pytest.param(make_token(SECRET, "alice")[:-3] + "AAA", id="tampered-signature"),
    pytest.param(make_token("", "alice", algorithm="none"), id="alg-none"),
    pytest.param(make_token(SECRET, "alice", ttl=-60), id="expired"),
    pytest.param(make_token(SECRET, "alice", ttl=None), id="no-exp"),
    pytest.param(make_token(SECRET, None), id="no-sub"),
    pytest.param(make_token(SECRET, "alice", algorithm="HS512"), id="hs512-not-hs256"),
    pytest.param(make_token(SECRET, "alice", exp="tomorrow"), id="exp-not-a-number"),
    pytest.param(42, id="not-a-string"),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
async def test_a_bad_token_is_refused_with_invalid_token(
    token_url: str, connect: Connect, token: Any
) -> None:
    error = await refused(connect, token_url, {"token": token})
    assert error.code == "invalid_token"


@pytest.mark.parametrize("sub", ["not valid!", "", "A" * 33, 42])
async def test_a_token_whose_sub_is_not_a_username_is_refused(
    token_url: str, connect: Connect, sub: Any
) -> None:
    error = await refused(connect, token_url, {"token": make_token(SECRET, sub)})
    assert error.code in ("invalid_token", "invalid_username")


# -- several connections per user ----------------------------------------------------------


async def test_one_user_may_hold_several_connections(chat_url: str, connect: Connect) -> None:
    first = await connect(chat_url, "alice")
    second = await connect(chat_url, "alice")
    assert (await first.next("welcome"))["user"] == "alice"
    assert (await second.next("welcome"))["user"] == "alice"
    assert first.sid != second.sid


async def test_every_connection_of_a_user_gets_private_messages_addressed_to_them(
    chat_url: str, connect: Connect
) -> None:
    tabs = [await connect(chat_url, "alice") for _ in range(3)]
    bob = await connect(chat_url, "bob")
    ack = expect_ok(await bob.call("private_message", {"to": "alice", "text": "hello"}))
    for tab in tabs:
        received = await tab.next("private_message")
        assert received["id"] == ack["id"]
        assert received["text"] == "hello"


async def test_closing_one_connection_leaves_the_others_of_the_user_working(
    chat_url: str, connect: Connect
) -> None:
    first = await connect(chat_url, "alice")
    second = await connect(chat_url, "alice")
    bob = await connect(chat_url, "bob")
    await first.close()
    expect_ok(await bob.call("private_message", {"to": "alice", "text": "still there?"}))
    assert (await second.next("private_message"))["text"] == "still there?"


async def test_welcome_is_the_first_event_a_connection_receives(
    chat_url: str, connect: Connect
) -> None:
    bob = await connect(chat_url, "bob")
    expect_ok(await bob.call("join", {"room": "lobby"}))
    alice = await connect(chat_url, "alice")
    await alice.next("welcome")
    assert alice.log[0][0] == "welcome"


async def test_a_long_polling_client_can_chat(chat_url: str, connect: Connect) -> None:
    polling = await connect(chat_url, "alice", transports=["polling"])
    websocket = await connect(chat_url, "bob")
    assert (await polling.next("welcome"))["user"] == "alice"
    expect_ok(await polling.call("join", {"room": "lobby"}))
    expect_ok(await websocket.call("join", {"room": "lobby"}))
    expect_ok(await websocket.call("message", {"room": "lobby", "text": "over polling"}))
    assert (await polling.next("message"))["text"] == "over polling"


async def test_usernames_are_case_sensitive(chat_url: str, connect: Connect) -> None:
    lower, upper = await connect(chat_url, "alice"), await connect(chat_url, "Alice")
    expect_ok(await upper.call("private_message", {"to": "alice", "text": "hi"}))
    assert (await lower.next("private_message"))["to"] == "alice"
    assert (await upper.next("private_message"))["from"] == "Alice"
    await upper.no_event("private_message", within=0.3)


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]])
async def test_a_connected_client_leaves_no_copy_of_its_handshake_request(
    aiohttp_server: AiohttpServer, connect: Connect, transports: list[str]
) -> None:
    app = create_app(chat_settings())
    server = await aiohttp_server(app)
    await connect(str(server.make_url("")).rstrip("/"), "alice", transports=transports)
    assert list(app[SOCKETS].environ.values()) == [{}]
