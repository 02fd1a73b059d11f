"""Security and caching headers of the page and static files; no versions in Server."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.fixtures import StartServer
from tests.support.settings import chat_settings

PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# path, Cache-Control
CACHING = [
    pytest.param("/", "no-cache", id="page"),
    pytest.param("/static/js/main.js", "no-cache", id="module"),
    pytest.param("/static/style.css", "no-cache", id="stylesheet"),
    pytest.param(
        "/static/vendor/socket.io.min.js", "public, max-age=31536000, immutable", id="vendor"
    ),
]


async def get_headers(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    async with http.get(url) as response:
        return dict(response.headers)


@pytest.mark.parametrize(("path", "cache_control"), CACHING)
async def test_the_page_and_static_files_carry_security_and_caching_headers(
    path: str, cache_control: str, chat_url: str, http: aiohttp.ClientSession
) -> None:
    headers = await get_headers(http, chat_url + path)
    assert {k: headers.get(k) for k in PAGE_HEADERS} == PAGE_HEADERS
    assert headers["Cache-Control"] == cache_control
    assert "script-src 'self'" in headers["Content-Security-Policy"]


async def test_the_page_may_be_framed_by_nobody_by_default(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    csp = (await get_headers(http, chat_url + "/"))["Content-Security-Policy"]
    assert csp.endswith("frame-ancestors 'none'")


async def test_the_page_may_be_framed_by_the_listed_cors_origins(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    origins = ("https://app.example", "https://admin.example")
    url = await start_server(chat_settings(cors_origins=origins))
    csp = (await get_headers(http, url + "/"))["Content-Security-Policy"]
    assert csp.endswith("frame-ancestors https://app.example https://admin.example")


async def test_a_missing_static_file_carries_the_headers_too(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(chat_url + "/static/nope.js") as response:
        assert response.status == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/emit", "/static/style.css", "/nope"])
async def test_no_answer_names_a_version_in_server(
    path: str, chat_url: str, http: aiohttp.ClientSession
) -> None:
    headers = await get_headers(http, chat_url + path)
    assert headers["Server"] == "chat-server"


async def test_a_websocket_upgrade_names_no_version_in_server(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(chat_url + "/socket.io/?EIO=4&transport=websocket") as ws:
        assert ws._response.headers["Server"] == "chat-server"


async def test_the_rest_api_gets_no_page_headers(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    headers = await get_headers(http, chat_url + "/healthz")
    assert "Content-Security-Policy" not in headers
