"""CHAT_CORS_ORIGINS: which browser origins may open a Socket.IO connection."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import socketio

from tests.support.fixtures import Connect, StartServer

EVIL = "http://evil.example"
APP = "https://app.example.com"


async def polling_handshake(
    http: aiohttp.ClientSession, url: str, origin: str
) -> aiohttp.ClientResponse:
    async with http.get(
        f"{url}/socket.io/?EIO=4&transport=polling", headers={"Origin": origin}
    ) as response:
        await response.read()
        return response


async def refused(connect: Connect, url: str, origin: str) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(url, "alice", headers={"Origin": origin})


async def test_without_cors_origins_a_client_sending_no_origin_connects(
    chat_url: str, connect: Connect
) -> None:
    client = await connect(chat_url, "alice")
    assert (await client.next("welcome"))["user"] == "alice"


async def test_without_cors_origins_the_servers_own_origin_connects(
    chat_url: str, connect: Connect
) -> None:
    client = await connect(chat_url, "alice", headers={"Origin": chat_url})
    assert (await client.next("welcome"))["user"] == "alice"


async def test_without_cors_origins_a_foreign_origin_is_refused(
    chat_url: str, connect: Connect
) -> None:
    await refused(connect, chat_url, EVIL)


async def test_without_cors_origins_a_foreign_origin_is_refused_on_polling(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    response = await polling_handshake(http, chat_url, EVIL)
    assert response.status >= 400
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture
async def listed_url(start_server: StartServer, make_settings: Any) -> str:
    return await start_server(make_settings(cors_origins=(APP, "http://other.example:8000")))


async def test_a_listed_origin_connects(listed_url: str, connect: Connect) -> None:
    client = await connect(listed_url, "alice", headers={"Origin": APP})
    assert (await client.next("welcome"))["user"] == "alice"


async def test_every_listed_origin_connects(listed_url: str, connect: Connect) -> None:
    client = await connect(listed_url, "alice", headers={"Origin": "http://other.example:8000"})
    assert (await client.next("welcome"))["user"] == "alice"


async def test_an_unlisted_origin_is_refused(listed_url: str, connect: Connect) -> None:
    await refused(connect, listed_url, EVIL)


async def test_a_listed_origin_on_another_port_is_refused(
    listed_url: str, connect: Connect
) -> None:
    await refused(connect, listed_url, "https://app.example.com:8443")


async def test_a_listed_origin_gets_cors_headers_on_polling(
    listed_url: str, http: aiohttp.ClientSession
) -> None:
    response = await polling_handshake(http, listed_url, APP)
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == APP


async def test_star_lets_any_origin_connect(
    start_server: StartServer, make_settings: Any, connect: Connect
) -> None:
    url = await start_server(make_settings(cors_origins=("*",)))
    client = await connect(url, "alice", headers={"Origin": EVIL})
    assert (await client.next("welcome"))["user"] == "alice"


async def test_with_a_list_the_servers_own_origin_still_connects(
    listed_url: str, connect: Connect
) -> None:
    client = await connect(listed_url, "alice", headers={"Origin": listed_url})
    assert (await client.next("welcome"))["user"] == "alice"
