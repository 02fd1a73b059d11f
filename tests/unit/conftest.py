"""Fixtures shared by the store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's Redis, emptied for this test."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
