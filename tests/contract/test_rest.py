"""The REST API: POST /api/emit to a room, a user or everyone; its errors; GET /api/rooms."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.chat import assert_has, expect_ok, join, now_ms
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer
from tests.support.settings import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
LIMIT = 65536


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = AUTH,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """POST ``body`` (bytes/str as is, anything else as JSON) to ``/api/emit``."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    async with http.post(f"{url}/api/emit", data=data, headers=all_headers) as response:
        payload = await response.json(content_type=None)
        return response.status, payload, response


async def get_room(
    http: aiohttp.ClientSession, url: str, room: str, headers: dict[str, str] | None = AUTH
) -> tuple[int, Any]:
    async with http.get(f"{url}/api/rooms/{room}", headers=headers or {}) as response:
        return response.status, await response.json(content_type=None)


def assert_error(status: int, body: Any, expected_status: int, code: str | None = None) -> None:
    """The contract's error shape: ``{ok: false, error: {code, message, fields?}}``."""
    assert status == expected_status, body
    assert body["ok"] is False
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def assert_invalid(status: int, body: Any, field: str) -> None:
    assert_error(status, body, 400, "invalid")
    messages = body["error"]["fields"][field]
    assert isinstance(messages, list)
    assert messages
    assert all(isinstance(m, str) and m for m in messages)


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with insignificant white space to exactly ``size`` bytes."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


@pytest.fixture
async def keyless_url(start_server: StartServer, make_settings: Any) -> str:
    """A server without CHAT_API_KEY."""
    return await start_server(make_settings(api_key=None))


# -- POST /api/emit: room ---------------------------------------------------------------------


async def test_emit_to_a_room_answers_ok_id_and_ts(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    before = now_ms()
    status, body, _ = await post(http, chat_url, {"room": "lobby", "text": "deployed"})
    assert status == 200
    assert body["ok"] is True
    assert isinstance(body["id"], str)
    assert type(body["ts"]) is int
    assert before - 1000 <= body["ts"] <= now_ms() + 1000


async def test_emit_to_a_room_reaches_its_members_as_a_message_from_bot(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice, bob = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(alice, "lobby")
    await join(bob, "lobby")
    _, body, _ = await post(http, chat_url, {"room": "lobby", "text": "deployed"})
    expected = {"id": body["id"], "room": "lobby", "from": "bot", "text": "deployed"}
    for client in (alice, bob):
        assert_has(await client.next("message"), {**expected, "ts": body["ts"]})


async def test_emit_to_a_room_uses_the_given_sender(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    await post(http, chat_url, {"room": "lobby", "text": "hi", "from": "deploy-bot"})
    assert (await alice.next("message"))["from"] == "deploy-bot"


async def test_emit_to_a_room_does_not_reach_other_rooms(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "dev")
    await post(http, chat_url, {"room": "lobby", "text": "lobby only"})
    await alice.no_event("message", within=0.3)


async def test_emit_to_a_room_is_kept_in_its_history(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    _, body, _ = await post(http, chat_url, {"room": "lobby", "text": "remember me"})
    ack = await join(await connect(chat_url, "alice"), "lobby")
    assert len(ack["history"]) == 1
    expected = {"id": body["id"], "room": "lobby", "from": "bot", "ts": body["ts"]}
    assert_has(ack["history"][0], {**expected, "text": "remember me"})


async def test_emitted_and_user_messages_share_one_ordered_room_history(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    ids = []
    for i in range(3):
        ack = expect_ok(await alice.call("message", {"room": "lobby", "text": f"u{i}"}))
        ids.append(ack["id"])
        ids.append((await post(http, chat_url, {"room": "lobby", "text": f"b{i}"}))[1]["id"])
    history = expect_ok(await alice.call("history", {"room": "lobby"}))["messages"]
    assert [m["id"] for m in history] == ids
    assert sorted(ids) == ids


async def test_emitted_text_is_trimmed_and_kept_as_data(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    await post(http, chat_url, {"room": "lobby", "text": "\n <img src=x onerror=alert(1)> \n"})
    assert (await alice.next("message"))["text"] == "<img src=x onerror=alert(1)>"


# -- POST /api/emit: to -----------------------------------------------------------------------


async def test_emit_to_a_user_reaches_every_connection_as_a_private_message_from_bot(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    tabs = [await connect(chat_url, "alice") for _ in range(2)]
    status, body, _ = await post(http, chat_url, {"to": "alice", "text": "your build passed"})
    assert status == 200
    for tab in tabs:
        expected = {"id": body["id"], "from": "bot", "to": "alice", "ts": body["ts"]}
        assert_has(await tab.next("private_message"), {**expected, "text": "your build passed"})


async def test_emit_to_a_user_reaches_nobody_else(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    await post(http, chat_url, {"to": "alice", "text": "for alice"})
    await bob.no_event("private_message", within=0.3)


async def test_emit_to_a_user_goes_into_the_conversation_with_bot(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    _, body, _ = await post(http, chat_url, {"to": "alice", "text": "stored"})
    alice = await connect(chat_url, "alice")
    history = expect_ok(await alice.call("history", {"with": "bot"}))["messages"]
    assert [m["id"] for m in history] == [body["id"]]


async def test_emit_to_a_user_from_a_named_sender_goes_into_that_conversation(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    _, body, _ = await post(http, chat_url, {"to": "alice", "text": "hi", "from": "alerts"})
    alice = await connect(chat_url, "alice")
    with_alerts = expect_ok(await alice.call("history", {"with": "alerts"}))["messages"]
    with_bot = expect_ok(await alice.call("history", {"with": "bot"}))["messages"]
    assert [m["id"] for m in with_alerts] == [body["id"]]
    assert with_alerts[0]["from"] == "alerts"
    assert with_bot == []


async def test_emit_to_a_user_reaches_a_connected_sender_like_a_user_message(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alerts = await connect(chat_url, "alerts")
    await connect(chat_url, "alice")
    _, body, _ = await post(http, chat_url, {"to": "alice", "text": "hi", "from": "alerts"})
    assert (await alerts.next("private_message"))["id"] == body["id"]


# -- POST /api/emit: broadcast ------------------------------------------------------------------


async def test_broadcast_reaches_every_connection_as_an_announcement(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    in_room, no_room = await connect(chat_url, "alice"), await connect(chat_url, "bob")
    await join(in_room, "lobby")
    status, body, _ = await post(http, chat_url, {"broadcast": True, "text": "maintenance"})
    assert status == 200
    assert body["ok"] is True
    for client in (in_room, no_room):
        assert_has(
            await client.next("announcement"),
            {"id": body["id"], "from": "bot", "text": "maintenance", "ts": body["ts"]},
        )


async def test_broadcast_uses_the_given_sender(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await post(http, chat_url, {"broadcast": True, "text": "hi", "from": "ops"})
    assert (await alice.next("announcement"))["from"] == "ops"


async def test_broadcast_is_not_a_room_message(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    await post(http, chat_url, {"broadcast": True, "text": "hi"})
    await alice.next("announcement")
    await alice.no_event("message", within=0.2)


# -- errors: 401, 503 ---------------------------------------------------------------------------

WRONG_AUTH = [
    pytest.param(None, id="no-header"),
    pytest.param({"Authorization": "Bearer wrong-key"}, id="wrong-key"),
    pytest.param({"Authorization": "Bearer "}, id="empty-key"),
    pytest.param({"Authorization": f"Basic {API_KEY}"}, id="basic-scheme"),
    pytest.param({"Authorization": API_KEY}, id="no-scheme"),
    pytest.param({"Authorization": f"Bearer {API_KEY}x"}, id="key-plus-one"),
    pytest.param({"Authorization": f"Bearer {API_KEY[:-1]}"}, id="key-minus-one"),
]


@pytest.mark.parametrize("headers", WRONG_AUTH)
async def test_emit_without_the_right_key_is_401_with_www_authenticate_bearer(
    chat_url: str, http: aiohttp.ClientSession, headers: dict[str, str] | None
) -> None:
    status, body, response = await post(http, chat_url, {"room": "lobby", "text": "x"}, headers)
    assert_error(status, body, 401)
    assert response.headers["WWW-Authenticate"].split()[0] == "Bearer"


async def test_a_refused_emit_reaches_nobody(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    await post(http, chat_url, {"room": "lobby", "text": "x"}, {"Authorization": "Bearer no"})
    await alice.no_event("message", within=0.3)


async def test_emit_without_a_configured_key_is_503_naming_chat_api_key(
    keyless_url: str, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await post(http, keyless_url, {"room": "lobby", "text": "x"})
    assert_error(status, body, 503)
    assert "CHAT_API_KEY" in body["error"]["message"]


@pytest.mark.parametrize(
    "headers", [None, AUTH, {"Authorization": "Bearer anything"}], ids=["none", "key", "other"]
)
async def test_no_configured_key_answers_503_whatever_the_request_carries(
    keyless_url: str, http: aiohttp.ClientSession, headers: dict[str, str] | None
) -> None:
    status, body, _ = await post(http, keyless_url, {"room": "lobby", "text": "x"}, headers)
    assert_error(status, body, 503)


# -- errors: 413 --------------------------------------------------------------------------------


async def test_a_body_of_exactly_65536_bytes_is_read_and_accepted(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    body = padded({"room": "lobby", "text": "\U0001f600" * 2000}, LIMIT)
    assert len(body) == LIMIT
    status, answer, _ = await post(http, chat_url, body)
    assert status == 200, answer
    assert (await alice.next("message"))["text"] == "\U0001f600" * 2000


async def test_a_body_of_65537_bytes_is_413_with_the_json_error(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    body = padded({"room": "lobby", "text": "x"}, LIMIT + 1)
    status, answer, _ = await post(http, chat_url, body)
    assert_error(status, answer, 413)


async def test_a_2_mib_body_is_413(chat_url: str, http: aiohttp.ClientSession) -> None:
    body = padded({"room": "lobby", "text": "x"}, 2 * 1024 * 1024)
    status, answer, _ = await post(http, chat_url, body)
    assert_error(status, answer, 413)


async def test_a_2_mib_chunked_body_without_content_length_is_413(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"room": "lobby", "text": "x"'
        for _ in range(32):
            yield b" " * 65536
        yield b"}"

    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.post(f"{chat_url}/api/emit", data=chunks(), headers=headers) as response:
        assert response.headers.get("Content-Type", "").startswith("application/json")
        assert_error(response.status, await response.json(), 413)


async def test_an_oversized_emit_reaches_nobody(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    await post(http, chat_url, padded({"room": "lobby", "text": "x"}, LIMIT + 1))
    await alice.no_event("message", within=0.3)


# -- errors: 400 --------------------------------------------------------------------------------

WHOLE_BODY_PROBLEMS = [
    pytest.param(b"{nope", id="not-json"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"\xff\xfe garbage", id="not-utf8"),
    pytest.param([{"room": "lobby", "text": "x"}], id="array"),
    pytest.param("just a string", id="json-string"),
    pytest.param(None, id="json-null"),
    pytest.param(42, id="json-number"),
    pytest.param({"text": "x"}, id="no-target"),
    pytest.param({"room": "lobby", "to": "alice", "text": "x"}, id="room-and-to"),
    pytest.param({"room": "lobby", "broadcast": True, "text": "x"}, id="room-and-broadcast"),
    pytest.param({"to": "alice", "broadcast": True, "text": "x"}, id="to-and-broadcast"),
    pytest.param({"room": "l", "to": "a", "broadcast": True, "text": "x"}, id="three-targets"),
]


@pytest.mark.parametrize("body", WHOLE_BODY_PROBLEMS)
async def test_a_whole_body_problem_is_400_invalid_under_fields_schema(
    chat_url: str, http: aiohttp.ClientSession, body: Any
) -> None:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    status, answer, _ = await post(http, chat_url, raw)
    assert_invalid(status, answer, "_schema")


FIELD_PROBLEMS = [
    pytest.param({"room": "no spaces", "text": "x"}, "room", id="bad-room"),
    pytest.param({"room": "r" * 65, "text": "x"}, "room", id="long-room"),
    pytest.param({"room": 5, "text": "x"}, "room", id="room-number"),
    pytest.param({"to": "not a user!", "text": "x"}, "to", id="bad-to"),
    pytest.param({"to": ["alice"], "text": "x"}, "to", id="to-list"),
    pytest.param({"room": "lobby", "text": ""}, "text", id="empty-text"),
    pytest.param({"room": "lobby", "text": "   "}, "text", id="blank-text"),
    pytest.param({"room": "lobby", "text": "x" * 2001}, "text", id="2001-chars"),
    pytest.param({"room": "lobby"}, "text", id="no-text"),
    pytest.param({"room": "lobby", "text": 5}, "text", id="text-number"),
    pytest.param({"room": "lobby", "text": "x", "from": "bad sender!"}, "from", id="bad-from"),
    pytest.param({"room": "lobby", "text": "x", "from": ""}, "from", id="empty-from"),
    pytest.param({"room": "lobby", "text": "x", "from": 7}, "from", id="from-number"),
    pytest.param({"broadcast": "yes", "text": "x"}, "broadcast", id="broadcast-string"),
    pytest.param({"room": "lobby", "text": "x\ud800"}, "text", id="lone-surrogate"),
    pytest.param({"room": "lobby", "text": "x", "extra": 1}, "extra", id="extra-field"),
]


@pytest.mark.parametrize(("body", "field"), FIELD_PROBLEMS)
async def test_a_bad_field_is_400_invalid_naming_it(
    chat_url: str, http: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    status, answer, _ = await post(http, chat_url, body)
    assert_invalid(status, answer, field)


async def test_broadcast_false_is_400_invalid(chat_url: str, http: aiohttp.ClientSession) -> None:
    status, answer, _ = await post(http, chat_url, {"broadcast": False, "text": "x"})
    assert_error(status, answer, 400, "invalid")


async def test_an_invalid_emit_reaches_nobody(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    await post(http, chat_url, {"room": "lobby", "to": "alice", "text": "x"})
    await alice.no_event("message", within=0.2)
    await alice.no_event("private_message", within=0.2)


# -- order of checks: 503 > 401 > 413 > 400 -------------------------------------------------------

TOO_BIG_AND_INVALID = b"{" + b"x" * (LIMIT + 10)


async def test_503_comes_before_401(keyless_url: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, keyless_url, {"room": "lobby", "text": "x"}, None)
    assert_error(status, body, 503)


async def test_503_comes_before_413(keyless_url: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, keyless_url, TOO_BIG_AND_INVALID)
    assert_error(status, body, 503)


async def test_503_comes_before_400(keyless_url: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, keyless_url, b"{nope")
    assert_error(status, body, 503)


async def test_401_comes_before_413(chat_url: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, chat_url, TOO_BIG_AND_INVALID, None)
    assert_error(status, body, 401)


async def test_401_comes_before_400(chat_url: str, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": "Bearer wrong"}
    status, body, _ = await post(http, chat_url, b"{nope", headers)
    assert_error(status, body, 401)


async def test_413_comes_before_400(chat_url: str, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, chat_url, TOO_BIG_AND_INVALID)
    assert_error(status, body, 413)


# -- GET /api/rooms/{room} ----------------------------------------------------------------------


async def test_room_of_nobody_is_200_with_empty_members_and_history(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    status, body = await get_room(http, chat_url, "never-used")
    assert status == 200
    assert body["room"] == "never-used"
    assert body["members"] == []
    assert body["history"] == []


async def test_room_lists_its_members_sorted(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    for name in ("carol", "Bob", "alice", "alice"):
        await join(await connect(chat_url, name), "lobby")
    await join(await connect(chat_url, "dave"), "elsewhere")
    status, body = await get_room(http, chat_url, "lobby")
    assert status == 200
    assert body["members"] == ["Bob", "alice", "carol"]


async def test_room_history_is_the_same_newest_tail_as_join_gives(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    for i in range(55):
        expect_ok(await alice.call("message", {"room": "lobby", "text": f"m{i}"}))
    joined = await join(await connect(chat_url, "bob"), "lobby")
    _, body = await get_room(http, chat_url, "lobby")
    assert len(body["history"]) == 50
    assert body["history"] == joined["history"]
    assert body["history"][-1]["text"] == "m54"


async def test_room_drops_members_who_left(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    alice = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("leave", {"room": "lobby"}))
    _, body = await get_room(http, chat_url, "lobby")
    assert body["members"] == []


async def test_room_names_with_a_hash_are_read_url_encoded(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    await join(await connect(chat_url, "alice"), "#general")
    status, body = await get_room(http, chat_url, "%23general")
    assert status == 200
    assert body["room"] == "#general"
    assert body["members"] == ["alice"]


@pytest.mark.parametrize("headers", WRONG_AUTH)
async def test_room_without_the_right_key_is_401(
    chat_url: str, http: aiohttp.ClientSession, headers: dict[str, str] | None
) -> None:
    async with http.get(f"{chat_url}/api/rooms/lobby", headers=headers or {}) as response:
        assert_error(response.status, await response.json(), 401)
        assert response.headers["WWW-Authenticate"].split()[0] == "Bearer"


async def test_room_without_a_configured_key_is_503_naming_chat_api_key(
    keyless_url: str, http: aiohttp.ClientSession
) -> None:
    status, body = await get_room(http, keyless_url, "lobby")
    assert_error(status, body, 503)
    assert "CHAT_API_KEY" in body["error"]["message"]


@pytest.mark.parametrize("room", ["bad%20room", "r" * 65, "caf%C3%A9", "a!"])
async def test_room_with_an_invalid_name_is_400_invalid(
    chat_url: str, http: aiohttp.ClientSession, room: str
) -> None:
    status, body = await get_room(http, chat_url, room)
    assert_invalid(status, body, "room")


async def test_rest_messages_arrive_like_socket_messages(
    chat_url: str, http: aiohttp.ClientSession, connect: Connect
) -> None:
    """Same keys in the same shape whether a user or the API sent the message."""
    alice: ChatClient = await connect(chat_url, "alice")
    await join(alice, "lobby")
    expect_ok(await alice.call("message", {"room": "lobby", "text": "by hand"}))
    await post(http, chat_url, {"room": "lobby", "text": "by api"})
    by_hand, by_api = await alice.next("message"), await alice.next("message")
    assert set(by_hand) == set(by_api)
    assert len(by_hand["id"]) == len(by_api["id"])


async def test_a_method_a_route_does_not_take_is_405_in_json_with_allow(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.put(f"{chat_url}/api/emit", headers=AUTH) as response:
        assert_error(response.status, await response.json(), 405, "method_not_allowed")
        # RFC 9110: a 405 names the methods the resource does take.
        assert response.headers["Allow"] == "POST"


async def test_an_unknown_api_path_is_404_in_json(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{chat_url}/api/nothing-here", headers=AUTH) as response:
        assert_error(response.status, await response.json(), 404, "not_found")
