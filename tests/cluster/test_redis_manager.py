"""The Redis fan-out: nothing dropped while Redis is away (within bounds), nothing doubled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from chat_server.core.metrics import Metrics
from chat_server.transport.bus import ResilientRedisManager
from tests.support.redis import RedisServer

CHANNEL = "chat:test:socketio"
#: Where an emit to ``room:a`` is published (per-room routing).
ROOM_A = "chat:test:{room:a}"


@pytest.fixture
async def manager(fresh_redis: RedisServer) -> AsyncIterator[ResilientRedisManager]:
    m = ResilientRedisManager(fresh_redis.url, channel=CHANNEL, metrics=Metrics())
    yield m
    await m.aclose()


async def listen(url: str, count: int, channel: str = ROOM_A) -> list[dict[str, object]]:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    got: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(10):
            while len(got) < count:
                message = await pubsub.get_message(timeout=1.0)
                if message and message["type"] == "message":
                    got.append(json.loads(message["data"]))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.aclose unannotated
        await client.aclose()
    return got


def arguments(data: object) -> list[object]:
    """An emit's arguments as published: python-socketio 5.14 sends a lone one bare."""
    return data if isinstance(data, list) else [data]


async def test_emits_made_while_redis_is_down_are_published_in_order_when_it_returns(
    manager: ResilientRedisManager, fresh_redis: RedisServer
) -> None:
    fresh_redis.stop()
    for i in range(3):
        await manager.emit("message", {"n": i}, namespace="/", room="room:a")
    await asyncio.sleep(0.5)
    assert manager.metrics.sample("chat_redis_publish_pending") == 3
    assert (manager.metrics.sample("chat_redis_publish_failures_total") or 0) >= 1
    fresh_redis.start()
    listener = asyncio.create_task(listen(fresh_redis.url, 3))
    await asyncio.sleep(0.3)  # let the listener subscribe before anything is sent
    got = await listener
    assert [arguments(m["data"]) for m in got] == [[{"n": 0}], [{"n": 1}], [{"n": 2}]]
    assert manager.metrics.sample("chat_redis_publish_pending") == 0


async def test_emit_returns_at_once_while_redis_is_frozen(
    manager: ResilientRedisManager, fresh_redis: RedisServer
) -> None:
    fresh_redis.pause()
    try:
        async with asyncio.timeout(0.5):
            for i in range(10):
                await manager.emit("message", {"n": i}, namespace="/", room="room:a")
    finally:
        fresh_redis.resume()


async def test_a_full_outbox_drops_the_oldest_and_counts_them(fresh_redis: RedisServer) -> None:
    metrics = Metrics()
    m = ResilientRedisManager(fresh_redis.url, channel=CHANNEL, metrics=metrics, outbox_bytes=1000)
    fresh_redis.stop()
    try:
        for i in range(20):
            await m.emit("message", {"text": "x" * 100, "n": i}, namespace="/", room="r")
        assert (metrics.sample("chat_redis_publish_dropped_total") or 0) > 0
        pending = metrics.sample("chat_redis_publish_pending") or 0
        assert 0 < pending < 20
    finally:
        await m.aclose()


def test_a_message_seen_twice_from_one_sender_is_delivered_once() -> None:
    m = ResilientRedisManager("redis://127.0.0.1:1/0", channel=CHANNEL, metrics=Metrics())
    raw = json.dumps({"method": "emit", "sender": "a", "seq": 1})
    assert m._decode(raw) is not None
    assert m._decode(raw) is None
    assert m._decode(json.dumps({"method": "emit", "sender": "a", "seq": 2})) is not None
    assert m._decode(json.dumps({"method": "emit", "sender": "b", "seq": 1})) is not None


def test_messages_without_a_sequence_pass_through() -> None:
    m = ResilientRedisManager("redis://127.0.0.1:1/0", channel=CHANNEL, metrics=Metrics())
    raw = json.dumps({"method": "emit", "host_id": "other"})
    assert m._decode(raw) is not None
    assert m._decode(raw) is not None
    assert m._decode("not json") is None
    assert m._decode(json.dumps([1, 2])) is None
