"""Bot tokens on the REST API: who may post what, as whom, and ``bot: true`` on their messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest

from chat_server.__main__ import main
from chat_server.config import Settings
from chat_server.core.auth import issue_token
from tests.contract.test_rest import AUTH, assert_error, get_room, post
from tests.support.chat import expect_ok, join
from tests.support.fixtures import Connect, StartServer

SECRET = "bot-test-secret-" + "b" * 32
HOUR = 3600


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def bot_token(name: str = "helper", rooms: list[str] | None = None, ttl: int = HOUR) -> str:
    """A bot token for ``name`` signed with the test secret."""
    return issue_token(SECRET, name, ttl, bot=True, rooms=rooms)


def user_token(name: str = "alice") -> str:
    """A genuine token of a user (no ``bot: true``)."""
    return issue_token(SECRET, name, HOUR)


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A token-mode server with both CHAT_API_KEY and CHAT_SECRET, memory or Redis."""
    return await start_server(backend_settings(secret=SECRET))


@pytest.fixture
async def bots_only_url(start_server: StartServer, make_settings: Callable[..., Settings]) -> str:
    """A server with CHAT_SECRET and no CHAT_API_KEY: bot tokens only."""
    return await start_server(make_settings(secret=SECRET, api_key=None))


async def user(connect: Connect, url: str, name: str) -> Any:
    """A connected user of the token-mode server."""
    return await connect(url, auth={"token": user_token(name)})


# -- the token command --------------------------------------------------------------------------


def token_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The claims of the token ``python -m chat_server token ...argv`` prints."""
    assert main(["token", *argv, "--secret", SECRET], {}) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    claims: dict[str, Any] = jwt.decode(lines[0], SECRET, algorithms=["HS256"])
    return claims


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["helper", "--bot"], {"sub": "helper", "bot": True}),
        (["helper", "--bot", "--room", "dev"], {"bot": True, "rooms": ["dev"]}),
        (["helper", "--bot", "--room", "dev", "--room", "#ops"], {"rooms": ["dev", "#ops"]}),
        (["alice"], {"sub": "alice"}),
    ],
    ids=["bot", "one-room", "two-rooms", "user"],
)
def test_token_command_prints_the_claims_asked_for(
    argv: list[str], expected: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    claims = token_of(argv, capsys)
    assert {k: claims.get(k) for k in expected} == expected
    assert ("bot" in claims) == ("--bot" in argv)
    assert ("rooms" in claims) == ("--room" in argv)


def test_token_command_ttl_applies_to_bot_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    claims = token_of(["helper", "--bot", "--ttl", "60"], capsys)
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["helper", "--room", "dev"], "--bot"), (["helper", "--bot", "--room", "a b"], "room")],
    ids=["room-without-bot", "bad-room"],
)
def test_token_command_refuses_bad_bot_arguments_with_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", *argv, "--secret", SECRET], {}) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert needle in captured.err


# -- who may do what: the table -----------------------------------------------------------------

HELPER = bearer(bot_token("helper"))
DEV_ONLY = bearer(bot_token("helper", rooms=["dev"]))
EXPIRED = bearer(bot_token("helper", ttl=-10))
FORGED = bearer(issue_token("another-secret-" + "x" * 32, "helper", HOUR, bot=True))
USER = bearer(user_token("alice"))

ROOM = {"room": "dev", "text": "hi"}
PERMISSIONS = [
    # (headers, body, status, code)
    (HELPER, ROOM, 200, None),
    (HELPER, {**ROOM, "from": "helper"}, 200, None),
    (HELPER, {**ROOM, "from": "bot"}, 403, "forbidden"),
    (HELPER, {**ROOM, "from": "alice"}, 403, "forbidden"),
    (HELPER, {"to": "alice", "text": "hi"}, 200, None),
    (HELPER, {"broadcast": True, "text": "hi"}, 403, "forbidden"),
    (DEV_ONLY, ROOM, 200, None),
    (DEV_ONLY, {"room": "lobby", "text": "hi"}, 403, "forbidden"),
    (DEV_ONLY, {"to": "alice", "text": "hi"}, 200, None),
    (EXPIRED, ROOM, 401, "unauthorized"),
    (FORGED, ROOM, 401, "unauthorized"),
    (bearer("not-a-jwt"), ROOM, 401, "unauthorized"),
    (USER, ROOM, 403, "forbidden"),
    (AUTH, {**ROOM, "from": "alice"}, 200, None),
    (AUTH, {"broadcast": True, "text": "hi"}, 200, None),
    (HELPER, {"room": "dev"}, 400, "invalid"),
]
PERMISSION_IDS = [
    "bot-room",
    "bot-own-from",
    "bot-from-bot",
    "bot-from-other",
    "bot-private",
    "bot-broadcast",
    "scoped-covered-room",
    "scoped-other-room",
    "scoped-private",
    "expired",
    "forged",
    "garbage",
    "user-token",
    "key-any-from",
    "key-broadcast",
    "bot-bad-body",
]


@pytest.mark.parametrize(("headers", "body", "status", "code"), PERMISSIONS, ids=PERMISSION_IDS)
async def test_emit_permissions(
    url: str,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    got, answer, response = await post(http, url, body, headers)
    if code is None:
        assert got == status, answer
        assert answer["ok"] is True
        return
    assert_error(got, answer, status, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"].split()[0] == "Bearer"


ENDPOINTS = [
    # (method, path, headers, status)
    ("GET", "/api/rooms/dev", HELPER, 200),
    ("GET", "/api/rooms/dev", DEV_ONLY, 200),
    ("GET", "/api/rooms/lobby", DEV_ONLY, 403),
    ("POST", "/api/users/alice/disconnect", HELPER, 403),
    ("GET", "/metrics", HELPER, 403),
    ("GET", "/api/rooms/dev", USER, 403),
    ("GET", "/api/rooms/dev", EXPIRED, 401),
    ("POST", "/api/users/alice/disconnect", AUTH, 200),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    ENDPOINTS,
    ids=[f"{m}-{p}-{s}" for m, p, _, s in ENDPOINTS],
)
async def test_other_endpoints_for_bots(
    url: str,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    async with http.request(method, f"{url}{path}", headers=headers) as response:
        assert response.status == status, await response.text()
        if status >= 400:
            assert_error(status, await response.json(), status)


async def test_a_refused_bot_emit_reaches_nobody(
    url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await user(connect, url, "alice")
    await join(alice, "lobby")
    status, _, _ = await post(http, url, {"room": "lobby", "text": "x"}, DEV_ONLY)
    assert status == 403
    await alice.no_event("message", within=0.3)


# -- private rooms: a bot posts into and reads one only as its member ---------------------------

BOT_IN_A_ROOM = [
    # (method, path, body)
    ("POST", "/api/emit", {"room": "secret", "text": "hi"}),
    ("GET", "/api/rooms/secret", None),
]


async def private_room(http: aiohttp.ClientSession, url: str, members: list[str]) -> None:
    """Room ``secret``, private, owned by alice, with ``members`` invited."""
    body = {"room": "secret", "owner": "alice", "private": True}
    async with http.post(f"{url}/api/rooms", json=body, headers=AUTH) as response:
        assert response.status == 201, await response.text()
    for member in members:
        async with http.post(
            f"{url}/api/rooms/secret/members", json={"user": member}, headers=AUTH
        ) as response:
            assert response.status == 200, await response.text()


@pytest.mark.parametrize(("method", "path", "body"), BOT_IN_A_ROOM, ids=["emit", "read"])
async def test_a_bot_outside_a_private_room_is_403_forbidden(
    url: str, http: aiohttp.ClientSession, method: str, path: str, body: Any
) -> None:
    await private_room(http, url, [])
    async with http.request(method, f"{url}{path}", json=body, headers=HELPER) as response:
        assert_error(response.status, await response.json(), 403, "forbidden")


@pytest.mark.parametrize(("method", "path", "body"), BOT_IN_A_ROOM, ids=["emit", "read"])
async def test_a_bot_invited_into_a_private_room_may_post_and_read(
    url: str, http: aiohttp.ClientSession, method: str, path: str, body: Any
) -> None:
    await private_room(http, url, ["helper"])
    async with http.request(method, f"{url}{path}", json=body, headers=HELPER) as response:
        assert response.status == 200, await response.text()


# -- bot: true ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "event", "history"),
    [
        (ROOM, "message", {"room": "dev"}),
        ({"to": "alice", "text": "psst"}, "private_message", {"with": "helper"}),
    ],
    ids=["room", "private"],
)
async def test_a_bot_message_carries_bot_true_live_and_in_history(
    url: str,
    http: aiohttp.ClientSession,
    connect: Connect,
    body: dict[str, Any],
    event: str,
    history: dict[str, str],
) -> None:
    alice = await user(connect, url, "alice")
    await join(alice, "dev")
    _, answer, _ = await post(http, url, body, HELPER)
    live = await alice.next(event)
    assert (live["id"], live["from"], live["bot"]) == (answer["id"], "helper", True)
    stored = expect_ok(await alice.call("history", history))["messages"]
    assert [(m["id"], m.get("bot")) for m in stored] == [(answer["id"], True)]


async def test_key_and_user_messages_carry_no_bot_field(
    url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await user(connect, url, "alice")
    await join(alice, "dev")
    await post(http, url, {**ROOM, "from": "helper"}, AUTH)
    assert "bot" not in await alice.next("message")
    expect_ok(await alice.call("message", {"room": "dev", "text": "me"}))
    assert "bot" not in await alice.next("message")


# -- CHAT_SECRET without CHAT_API_KEY -----------------------------------------------------------


async def test_bot_tokens_work_without_an_api_key(
    bots_only_url: str, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await post(http, bots_only_url, ROOM, HELPER)
    assert status == 200, body
    status, body = await get_room(http, bots_only_url, "dev", HELPER)
    assert status == 200, body


@pytest.mark.parametrize("headers", [AUTH, bearer("x"), {}], ids=["old-key", "garbage", "none"])
async def test_without_an_api_key_anything_but_a_bot_token_is_401(
    bots_only_url: str, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, body, _ = await post(http, bots_only_url, ROOM, headers)
    assert_error(status, body, 401, "unauthorized")
