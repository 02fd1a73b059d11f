"""Fixtures: real chat servers (in-process and as child processes), real Redis, real clients."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from chat_server.config import Settings
from tests.support.clients import ChatClient, close_bounded
from tests.support.fixtures import Connect, MakeSettings, StartProcesses, StartServer
from tests.support.process import ServerProcess
from tests.support.redis import RedisServer, require_redis_binary
from tests.support.settings import API_KEY, chat_settings

#: Fixtures that need a redis-server binary; tests using them get the ``redis`` mark.
REDIS_FIXTURES = {"redis_server", "redis_url", "fresh_redis", "server_processes"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REDIS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: waits out a real timeout (tens of seconds)")


# -- settings and in-process servers ------------------------------------------------


@pytest.fixture
def make_settings() -> MakeSettings:
    """``make_settings(**overrides) -> Settings`` with test-friendly defaults."""
    return chat_settings


@pytest.fixture
def start_server(aiohttp_server: AiohttpServer) -> StartServer:
    """``await start_server(settings) -> base URL``: ``create_app`` served on a free port."""
    from chat_server.app import create_app

    async def start(settings: Settings) -> str:
        server = await aiohttp_server(create_app(settings))
        return str(server.make_url("")).rstrip("/")

    return start


@pytest.fixture
async def chat_url(start_server: StartServer) -> str:
    """Base URL of a single-process server (no Redis) with ``chat_settings()``."""
    return await start_server(chat_settings())


# -- clients --------------------------------------------------------------------------


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``await connect(url, username="alice", **kw) -> ChatClient``; closes them all after.

    ``username`` becomes ``auth={"username": ...}`` unless ``auth`` is given;
    other keywords go to ``ChatClient.connect`` (``transports``, ``headers``,
    ``reconnection``, ...). A refused connection raises ``ConnectRefused``.
    """
    clients: list[ChatClient] = []

    async def open_client(url: str, username: str | None = None, **kw: Any) -> ChatClient:
        if "auth" not in kw and username is not None:
            kw["auth"] = {"username": username}
        client = ChatClient(**kw.pop("client_kwargs", {}))
        clients.append(client)
        await client.open(url, **kw)
        return client

    yield open_client
    await asyncio.gather(*(close_bounded(c) for c in clients), return_exceptions=True)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An ``aiohttp.ClientSession`` for REST calls."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api_headers() -> dict[str, str]:
    """The ``Authorization`` header for ``chat_settings()``'s API key."""
    return {"Authorization": f"Bearer {API_KEY}"}


# -- Redis ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the whole session (skip or, under CI=true, fail without one)."""
    require_redis_binary()
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's Redis, emptied (FLUSHALL) before the test."""
    if not redis_server.running:
        # a test stopped the shared server; bring it back rather than fail the rest
        redis_server.start()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, free to stop, kill or pause."""
    require_redis_binary()
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.redis)],
)
def backend_settings(request: pytest.FixtureRequest) -> MakeSettings:
    """``backend_settings(**overrides) -> Settings``, once per store: in memory, then Redis.

    Tests using it run twice, so the in-process and the Redis-backed
    history and presence stores are held to the same behaviour.
    """
    extra: dict[str, Any] = {}
    if request.param == "redis":
        extra["redis_url"] = request.getfixturevalue("redis_url")

    def build(**overrides: Any) -> Settings:
        return chat_settings(**{**extra, **overrides})

    return build


@pytest.fixture
async def server_processes(redis_url: str) -> AsyncIterator[StartProcesses]:
    """``await server_processes(n, env={...}, args=[...], redis_url=...)``: n real processes.

    They share ``redis_url`` (the session Redis by default), run with the
    rate limits raised and ``CHAT_API_KEY`` = ``test-key`` unless ``env``
    says otherwise, and are stopped after the test.
    """
    started: list[ServerProcess] = []
    shared_url = redis_url

    async def start(
        n: int = 2,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        redis_url: str | None = None,
    ) -> list[ServerProcess]:
        full_env = {
            "REDIS_URL": redis_url or shared_url,
            "CHAT_API_KEY": API_KEY,
            "CHAT_RATE_BURST": "10000",
            "CHAT_RATE_PER_SECOND": "10000",
            "CHAT_API_RATE_PER_SECOND": "10000",
            "LOG_LEVEL": "WARNING",
        }
        full_env.update(env or {})
        procs = [ServerProcess(env=full_env, args=args or []) for _ in range(n)]
        started.extend(procs)
        for proc in procs:
            proc.launch()
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in procs))
        return procs

    yield start
    # SIGINT: cleaning up needs no SIGTERM drain (its own tests cover that)
    await asyncio.gather(*(asyncio.to_thread(p.stop, 10.0, signal.SIGINT) for p in started))
