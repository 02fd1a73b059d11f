"""GET /api/openapi.json: valid OpenAPI 3.1, complete, and true of the live server."""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chat_server.app import create_app
from chat_server.core.auth import issue_token
from chat_server.edges import openapi
from chat_server.edges.keys import OPENAPI
from tests.support.chat import expect_ok, join, unique
from tests.support.fixtures import Connect
from tests.support.process import ServerProcess
from tests.support.redis import RedisServer
from tests.support.settings import API_KEY, chat_settings

SECRET = "openapi-test-secret-" + "o" * 32
#: Examples per operation and credential: enough to reach every refusal, bounded in time.
MAX_EXAMPLES = 40
#: Paths that are not the REST API: the page, its files and Socket.IO.
NOT_REST = {"/", "/static", "/socket.io/"}


async def test_the_document_is_valid_openapi_3_1_and_needs_no_key(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{chat_url}/api/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document = await response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def served_operations() -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every HTTP route the app serves beside the page and Socket.IO."""
    app = create_app(chat_settings())
    operations = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        # aiohttp answers HEAD beside every GET by itself.
        if route.method == "HEAD" or path in NOT_REST:
            continue
        operations.add((route.method, path))
    return operations


def described_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


async def test_the_document_describes_every_route_the_app_serves(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{chat_url}/api/openapi.json") as response:
        document = await response.json()
    served = served_operations()
    assert {path for _, path in served if path.startswith("/api/")}, "no /api/ route found"
    assert described_operations(document) == served


# -- the live server holds to the document (schemathesis) ------------------------------------


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def live_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A real server process with an API key, bot tokens and the rate limits out of the way.

    Once in memory, once over the session's Redis (whose stores answer and
    fail in their own ways).
    """
    env = {
        "CHAT_API_KEY": API_KEY,
        "CHAT_SECRET": SECRET,
        "CHAT_API_RATE_PER_SECOND": "100000",
        "LOG_LEVEL": "WARNING",
    }
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis.flushall()
        env["REDIS_URL"] = redis.url
    with ServerProcess(env=env) as server:
        yield server


KEY = {"Authorization": f"Bearer {API_KEY}"}
BOT = {"Authorization": f"Bearer {issue_token(SECRET, 'helper', 3600, bot=True, rooms=['dev'])}"}


def with_answers_closed(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``additionalProperties: false`` on every answer schema.

    Answers are open in the served document (the server may add fields, and
    clients must accept them); the checks read them closed, so a field the
    server sends and the document does not name fails here instead.
    """
    closed = copy.deepcopy(document)
    for schema in closed["components"]["schemas"].values():
        if schema.get("additionalProperties") is True:
            schema["additionalProperties"] = False
    return closed


#: The document as this checkout builds it (the live server must serve the same
#: bytes), its answers closed.
live = schemathesis.openapi.from_dict(with_answers_closed(json.loads(openapi.document())))
bounded = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def test_the_live_server_serves_the_document_the_checks_read(live_server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{live_server.url}{openapi.OPENAPI_PATH}", timeout=5) as answer:
        assert answer.read() == openapi.document()


@live.parametrize()
@bounded
def test_the_server_answers_the_api_key_as_its_document_says(
    case: Any, live_server: ServerProcess
) -> None:
    case.call_and_validate(base_url=live_server.url, headers=KEY)


@live.parametrize()
@bounded
def test_the_server_answers_a_bot_token_as_its_document_says(
    case: Any, live_server: ServerProcess
) -> None:
    case.call_and_validate(base_url=live_server.url, headers=BOT)


# -- answers a generated run rarely or never reaches, each held to the document --------------

#: What "as the document says" means for one answer (a 503 the document names included).
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def answer(url: str, method: str, path: str, **case: Any) -> Any:
    """Send one request built from the document's operation; the answer, checked against it.

    The answer is schemathesis's: ``headers`` maps lower-case names to lists of values.
    """
    made = live[path][method].Case(**case)
    response = made.call(base_url=url)
    made.validate_response(response, checks=CONFORMANCE)
    return response


def started(env: dict[str, str]) -> Iterator[ServerProcess]:
    with ServerProcess(env={"LOG_LEVEL": "WARNING", **env}) as server:
        yield server


@pytest.fixture(scope="module")
def limited_server() -> Iterator[ServerProcess]:
    """One REST request per second for the key."""
    yield from started({"CHAT_API_KEY": API_KEY, "CHAT_API_RATE_PER_SECOND": "1"})


@pytest.fixture(scope="module")
def closed_server() -> Iterator[ServerProcess]:
    """Neither CHAT_API_KEY nor CHAT_SECRET: the REST API is off."""
    yield from started({})


EMIT = {"room": "dev", "text": "hi"}


def test_a_rate_limited_answer_is_as_the_document_says(limited_server: ServerProcess) -> None:
    answer(limited_server.url, "POST", "/api/emit", headers=KEY, body=EMIT)
    response = answer(limited_server.url, "POST", "/api/emit", headers=KEY, body=EMIT)
    assert response.status_code == 429
    assert int(response.headers["retry-after"][0]) >= 1


def test_a_closed_api_answers_503_as_the_document_says(closed_server: ServerProcess) -> None:
    response = answer(closed_server.url, "POST", "/api/emit", headers=KEY, body=EMIT)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "api_disabled")


def test_a_body_over_64_kib_answers_413_as_the_document_says(
    live_server: ServerProcess,
) -> None:
    body = {"room": "dev", "text": "x" * 70_000}
    response = answer(live_server.url, "POST", "/api/emit", headers=KEY, body=body)
    assert response.status_code == 413


def test_a_replay_and_a_conflict_answer_as_the_document_says(
    live_server: ServerProcess,
) -> None:
    headers = {**KEY, "Idempotency-Key": unique("replay")}
    first = answer(live_server.url, "POST", "/api/emit", headers=headers, body=EMIT)
    again = answer(live_server.url, "POST", "/api/emit", headers=headers, body=EMIT)
    assert again.headers["idempotent-replayed"] == ["true"]
    assert again.json() == first.json()
    other = {**EMIT, "text": "another"}
    conflict = answer(live_server.url, "POST", "/api/emit", headers=headers, body=other)
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "conflict")


def test_room_rules_refusals_answer_as_the_document_says(live_server: ServerProcess) -> None:
    room = unique("owned")
    body = {"room": room, "owner": "alice", "private": True}
    created = answer(live_server.url, "POST", "/api/rooms", headers=KEY, body=body)
    assert created.status_code == 201
    again = answer(live_server.url, "POST", "/api/rooms", headers=KEY, body=body)
    assert again.status_code == 409
    owner = {"room": room, "user": "alice"}
    kick = "/api/rooms/{room}/members/{user}"
    refused = answer(live_server.url, "DELETE", kick, headers=KEY, path_parameters=owner)
    assert refused.status_code == 403
    outside = answer(
        live_server.url, "GET", "/api/rooms/{room}", headers=BOT, path_parameters={"room": room}
    )
    assert outside.status_code == 403


def test_a_draining_server_answers_as_the_document_says() -> None:
    with ServerProcess(env={"CHAT_API_KEY": API_KEY, "LOG_LEVEL": "WARNING"}) as server:
        server.send_signal(signal.SIGTERM)
        # It refuses work for its 3 s grace before it exits: poll until it says so.
        deadline = time.monotonic() + 2
        while answer(server.url, "GET", "/healthz").status_code != 503:
            assert time.monotonic() < deadline, "the server never said it was draining"
            time.sleep(0.05)
        emit = answer(server.url, "POST", "/api/emit", headers=KEY, body=EMIT)
        assert (emit.status_code, emit.json()["error"]["code"]) == (503, "draining")
        assert answer(server.url, "GET", openapi.OPENAPI_PATH).status_code == 503


async def test_a_history_of_changed_messages_answers_as_the_document_says(
    chat_url: str, connect: Connect
) -> None:
    room = unique("changes")
    alice = await connect(chat_url, "alice")
    await join(alice, room)
    sent = {"room": room, "text": "first", "client_id": "c1"}
    first = expect_ok(await alice.call("message", sent))["id"]
    expect_ok(await alice.call("edit", {"room": room, "id": first, "text": "edited"}))
    react = {"room": room, "id": first, "emoji": "👍", "add": True}
    expect_ok(await alice.call("react", react))
    second = expect_ok(await alice.call("message", {"room": room, "text": "gone"}))["id"]
    expect_ok(await alice.call("delete", {"room": room, "id": second}))
    response = await asyncio.to_thread(
        answer, chat_url, "GET", "/api/rooms/{room}", headers=KEY, path_parameters={"room": room}
    )
    history = response.json()["history"]
    assert [(m["id"], m.get("edited_ts") is not None, m.get("deleted")) for m in history] == [
        (first, True, None),
        (second, False, True),
    ]


def sent_with_defaults(schema: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` plus every default the document names for ``schema``, as generated clients send."""
    properties = json.loads(openapi.document())["components"]["schemas"][schema]["properties"]
    defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    return {**defaults, **body}


@pytest.mark.parametrize(
    ("schema", "body"),
    [("EmitToRoom", {"room": "dev", "text": "hi"}), ("EmitToUser", {"to": "alice", "text": "hi"})],
    ids=["room", "user"],
)
def test_a_bot_that_sends_every_default_the_document_names_is_not_refused(
    live_server: ServerProcess, schema: str, body: dict[str, Any]
) -> None:
    request = urllib.request.Request(
        f"{live_server.url}/api/emit",
        data=json.dumps(sent_with_defaults(schema, body)).encode(),
        headers={**BOT, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_every_app_serves_the_one_document_built_once_per_process() -> None:
    assert create_app(chat_settings())[OPENAPI] is create_app(chat_settings())[OPENAPI]
