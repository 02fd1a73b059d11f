"""GET /api/openapi.json: valid OpenAPI 3.1, complete, and true of the live server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate

from chat_server.app import create_app
from chat_server.core.auth import issue_token
from chat_server.edges import openapi
from chat_server.edges.keys import OPENAPI
from tests.support.process import ServerProcess
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


@pytest.fixture(scope="module")
def live_server() -> Iterator[ServerProcess]:
    """A real server process with an API key, bot tokens and the rate limits out of the way."""
    env = {
        "CHAT_API_KEY": API_KEY,
        "CHAT_SECRET": SECRET,
        "CHAT_API_RATE_PER_SECOND": "100000",
        "LOG_LEVEL": "WARNING",
    }
    with ServerProcess(env=env) as server:
        yield server


KEY = {"Authorization": f"Bearer {API_KEY}"}
BOT = {"Authorization": f"Bearer {issue_token(SECRET, 'helper', 3600, bot=True, rooms=['dev'])}"}

#: The document as this checkout builds it; the live server must serve the same bytes.
live = schemathesis.openapi.from_dict(json.loads(openapi.document()))
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
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_the_document_is_plain_json_the_server_built_once() -> None:
    app = create_app(chat_settings())
    other = create_app(chat_settings())

    assert app[OPENAPI] is other[OPENAPI]
    assert json.loads(app[OPENAPI])["info"]["title"]
