"""GET /healthz: ok without Redis, ok with it, 503 while a configured Redis is unreachable."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.support.fixtures import StartServer
from tests.support.redis import RedisServer


async def health(http: aiohttp.ClientSession, url: str, wait: float = 10) -> tuple[int, Any]:
    """``(status, body)`` of /healthz; fails if no answer comes within ``wait`` seconds."""
    client_timeout = aiohttp.ClientTimeout(total=wait)
    async with http.get(f"{url}/healthz", timeout=client_timeout) as response:
        return response.status, await response.json()


async def wait_for_status(
    http: aiohttp.ClientSession, url: str, status: int, within: float = 15
) -> Any:
    """Poll /healthz until it answers ``status``; return that answer's body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: tuple[int, Any] | None = None
    while loop.time() < deadline:
        last = await health(http, url)
        if last[0] == status:
            return last[1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"/healthz never answered {status} within {within} s; last {last}")


async def test_healthz_without_redis_is_ok_and_disabled(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    assert await health(http, chat_url) == (200, {"status": "ok", "redis": "disabled"})


async def test_healthz_needs_no_key(
    start_server: StartServer, make_settings: Any, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(api_key=None))
    assert await health(http, url) == (200, {"status": "ok", "redis": "disabled"})


async def test_healthz_with_a_reachable_redis_is_ok_and_ok(
    start_server: StartServer, make_settings: Any, redis_url: str, http: aiohttp.ClientSession
) -> None:
    url = await start_server(make_settings(redis_url=redis_url))
    assert await health(http, url) == (200, {"status": "ok", "redis": "ok"})


async def test_healthz_is_503_with_redis_down_while_redis_is_stopped(
    start_server: StartServer,
    make_settings: Any,
    fresh_redis: RedisServer,
    http: aiohttp.ClientSession,
) -> None:
    url = await start_server(make_settings(redis_url=fresh_redis.url))
    fresh_redis.stop()
    body = await wait_for_status(http, url, 503)
    assert body["redis"] == "down"
    assert body.get("status") != "ok"


async def test_healthz_recovers_when_redis_comes_back(
    start_server: StartServer,
    make_settings: Any,
    fresh_redis: RedisServer,
    http: aiohttp.ClientSession,
) -> None:
    url = await start_server(make_settings(redis_url=fresh_redis.url))
    fresh_redis.stop()
    await wait_for_status(http, url, 503)
    fresh_redis.start()
    assert await wait_for_status(http, url, 200) == {"status": "ok", "redis": "ok"}


async def test_healthz_answers_503_promptly_while_redis_is_frozen(
    start_server: StartServer,
    make_settings: Any,
    fresh_redis: RedisServer,
    http: aiohttp.ClientSession,
) -> None:
    """A Redis that accepts connections but never answers is unreachable too."""
    url = await start_server(make_settings(redis_url=fresh_redis.url))
    fresh_redis.pause()
    try:
        status, body = await health(http, url, wait=10)
    finally:
        fresh_redis.resume()
    assert status == 503
    assert body["redis"] == "down"
