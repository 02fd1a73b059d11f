"""Handshake limits: a full server answers 503, a flooding address 429, before any session."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from chat_server.core.addresses import parse_networks
from tests.support.chat import expect_ok, join, unique
from tests.support.fixtures import Connect, StartServer
from tests.support.settings import API_KEY, chat_settings

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"


async def handshake(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    async with http.get(url + HANDSHAKE, headers=headers or {}) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, response.headers


async def test_a_handshake_past_max_connections_is_503_server_full(
    start_server: StartServer, connect: Connect, http: aiohttp.ClientSession
) -> None:
    url = await start_server(chat_settings(max_connections=1))
    await connect(url, "alice")
    status, body, _ = await handshake(http, url)
    assert status == 503
    assert body["ok"] is False
    assert body["error"]["code"] == "server_full"
    assert body["error"]["message"]


async def test_a_websocket_handshake_past_max_connections_is_refused_before_the_upgrade(
    start_server: StartServer, connect: Connect, http: aiohttp.ClientSession
) -> None:
    url = await start_server(chat_settings(max_connections=1))
    await connect(url, "alice")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(url + WEBSOCKET)
    assert info.value.status == 503


async def test_a_handshake_past_the_per_address_rate_is_429_with_retry_after(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    url = await start_server(chat_settings(connect_rate_per_ip=2.0))
    statuses = [(await handshake(http, url))[0] for _ in range(2)]
    status, body, headers = await handshake(http, url)
    assert statuses == [200, 200]
    assert status == 429
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["retry_after"] > 0
    assert int(headers["Retry-After"]) >= 1


async def test_a_trusted_proxy_has_each_forwarded_client_counted_apart(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    settings = chat_settings(
        connect_rate_per_ip=1.0, trusted_proxies=parse_networks(["127.0.0.1"])
    )
    url = await start_server(settings)
    first = {"X-Forwarded-For": "198.51.100.1"}
    assert (await handshake(http, url, first))[0] == 200
    assert (await handshake(http, url, first))[0] == 429
    assert (await handshake(http, url, {"X-Forwarded-For": "198.51.100.2"}))[0] == 200


async def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    url = await start_server(chat_settings(connect_rate_per_ip=1.0))
    assert (await handshake(http, url, {"X-Forwarded-For": "198.51.100.1"}))[0] == 200
    assert (await handshake(http, url, {"X-Forwarded-For": "198.51.100.2"}))[0] == 429


async def test_refused_handshakes_are_counted_by_reason(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    url = await start_server(chat_settings(connect_rate_per_ip=1.0))
    for _ in range(3):
        await handshake(http, url)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with http.get(url + "/metrics", headers=headers) as response:
        text = await response.text()
    assert 'chat_handshakes_refused_total{reason="rate_limited"} 2.0' in text


async def test_a_flood_from_one_address_gets_429s_while_another_address_chats(
    start_server: StartServer, connect: Connect, http: aiohttp.ClientSession
) -> None:
    url = await start_server(chat_settings(connect_rate_per_ip=5.0))
    stop = asyncio.Event()
    statuses: list[int] = []
    slowest = 0.0

    async def flood() -> None:
        nonlocal slowest
        while not stop.is_set():
            started = time.perf_counter()
            statuses.append((await handshake(http, url))[0])
            slowest = max(slowest, time.perf_counter() - started)

    flooders = [asyncio.create_task(flood()) for _ in range(4)]
    try:
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        ) as elsewhere:
            client = await connect(url, unique("bob"), client_kwargs={"http_session": elsewhere})
            room = unique("room")
            await join(client, room)
            for n in range(5):
                expect_ok(await client.call("message", {"room": room, "text": f"hi {n}"}))
            await client.close()
    finally:
        stop.set()
        await asyncio.gather(*flooders)
    refused = statuses.count(429)
    assert refused > 10 * statuses.count(200), statuses
    assert set(statuses) <= {200, 429}
    # Refused at once, not queued behind the flood.
    assert slowest < 1.0


async def _handshake_status_once_freed(http: aiohttp.ClientSession, url: str) -> int:
    # The server forgets a closed session once it has seen the close: up to 5 s.
    for _ in range(100):
        status = (await handshake(http, url))[0]
        if status != 503:
            break
        await asyncio.sleep(0.05)
    return status


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
async def test_a_closed_websocket_gives_its_place_under_max_connections_back(
    start_server: StartServer,
    connect: Connect,
    http: aiohttp.ClientSession,
    transports: list[str],
) -> None:
    url = await start_server(chat_settings(max_connections=1))
    alice = await connect(url, "alice", transports=transports)
    await alice.close()
    assert await _handshake_status_once_freed(http, url) == 200
