"""Fixtures of the store tests: each store once in memory and once in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from chat_server.core.ports import History, Markers
from chat_server.stores.history import MemoryHistory, RedisHistory
from chat_server.stores.markers import MemoryMarkers, RedisMarkers

#: ``make_history(size) -> History``, a fresh store keeping ``size`` a conversation.
MakeHistory = Callable[[int], History]

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's test Redis."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=BACKENDS)
def make_history(request: pytest.FixtureRequest) -> MakeHistory:
    """History stores of one flavour: memory, then Redis."""
    if request.param == "memory":
        return MemoryHistory
    client = request.getfixturevalue("redis_client")
    return lambda size: RedisHistory(client, size)


@pytest.fixture(params=BACKENDS)
def markers(request: pytest.FixtureRequest) -> Markers:
    """A read-marker store: memory, then Redis."""
    if request.param == "memory":
        return MemoryMarkers()
    return RedisMarkers(request.getfixturevalue("redis_client"))
