"""Bus subscriptions follow the local members; a join waits for Redis's confirmation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from chat_server.core.metrics import Metrics
from chat_server.core.settings import RedisTarget
from chat_server.transport.routing import Channels, Subscriptions
from chat_server.transport.sharded import ShardedPubSub
from tests.support.redis import subscribers, wait_unsubscribed

CONTROL = "chat:t:socketio"
ROOM = "chat:t:{room:r}"

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    """A client of the run's Redis: one Redis, or the cluster (``conftest.py``)."""
    target = RedisTarget.parse(redis_url)
    redis: Any = (
        RedisCluster.from_url(target.url)
        if target.cluster
        else aioredis.Redis.from_url(target.url)
    )
    yield redis
    await redis.aclose()


@pytest.fixture
async def attached(client: Any) -> AsyncIterator[tuple[Subscriptions, Any]]:
    """Subscriptions on a real pub/sub connection whose confirmations nobody reads yet.

    On a cluster the connection is the bus's ``ShardedPubSub``: the same
    bookkeeping over sharded subscriptions.
    """
    subscriptions = Subscriptions(Channels(CONTROL), Metrics())
    pubsub = pubsub_of(client)
    await subscriptions.attach(pubsub, set())
    yield subscriptions, pubsub
    await subscriptions.aclose()
    await pubsub.aclose()


def pubsub_of(client: Any) -> Any:
    """A pub/sub connection as the bus makes it: sharded on a cluster."""
    return ShardedPubSub(client, {}) if isinstance(client, RedisCluster) else client.pubsub()


async def read_confirmations(
    subscriptions: Subscriptions, pubsub: Any, until: Callable[[], bool]
) -> None:
    """Hand Redis's confirmations to ``subscriptions``, as the bus listener does."""
    async with asyncio.timeout(5):
        while not until():
            message = await pubsub.get_message(timeout=0.2)
            if message is not None and message["type"] in ("subscribe", "unsubscribe"):
                subscriptions.confirmed(message["type"], message["channel"].decode())


async def test_ready_returns_only_once_redis_confirmed_the_subscription(
    attached: tuple[Subscriptions, Any], client: Any
) -> None:
    subscriptions, pubsub = attached
    subscriptions.want(ROOM)
    waiting = asyncio.create_task(subscriptions.ready(ROOM))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await read_confirmations(subscriptions, pubsub, waiting.done)
    assert subscriptions.active(ROOM)
    assert await subscribers(client, ROOM) == 1


async def test_the_control_channel_is_subscribed_on_attach(
    attached: tuple[Subscriptions, Any], client: Any
) -> None:
    subscriptions, pubsub = attached
    await read_confirmations(subscriptions, pubsub, lambda: subscriptions.active(CONTROL))
    assert await subscribers(client, CONTROL) == 1


async def test_a_dropped_channel_is_unsubscribed(
    attached: tuple[Subscriptions, Any], client: Any
) -> None:
    subscriptions, pubsub = attached
    subscriptions.want(ROOM)
    await read_confirmations(subscriptions, pubsub, lambda: subscriptions.active(ROOM))
    subscriptions.drop(ROOM)
    await read_confirmations(subscriptions, pubsub, lambda: not subscriptions.active(ROOM))
    await wait_unsubscribed(client, ROOM)


async def test_a_channel_dropped_and_wanted_again_waits_for_its_last_confirmation(
    attached: tuple[Subscriptions, Any], client: Any
) -> None:
    subscriptions, pubsub = attached
    subscriptions.want(ROOM)
    await read_confirmations(subscriptions, pubsub, lambda: subscriptions.active(ROOM))
    subscriptions.drop(ROOM)
    await asyncio.sleep(0.1)  # the UNSUBSCRIBE goes out
    subscriptions.want(ROOM)
    await asyncio.sleep(0.1)  # and the SUBSCRIBE after it
    waiting = asyncio.create_task(subscriptions.ready(ROOM))
    message = await pubsub.get_message(timeout=1.0)
    while message is None or message["type"] != "unsubscribe":
        message = await pubsub.get_message(timeout=1.0)
    subscriptions.confirmed("unsubscribe", message["channel"].decode())
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await read_confirmations(subscriptions, pubsub, waiting.done)
    assert await subscribers(client, ROOM) == 1


async def test_a_lost_connection_releases_whoever_waits(
    attached: tuple[Subscriptions, Any],
) -> None:
    subscriptions, _ = attached
    subscriptions.want(ROOM)
    waiting = asyncio.create_task(subscriptions.ready(ROOM))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    subscriptions.detach()
    await asyncio.wait_for(waiting, 1)


async def test_a_new_connection_subscribes_every_wanted_channel(
    client: Any,
) -> None:
    subscriptions = Subscriptions(Channels(CONTROL), Metrics())
    subscriptions.want(ROOM)
    pubsub = pubsub_of(client)
    try:
        await subscriptions.attach(pubsub, set())
        await read_confirmations(subscriptions, pubsub, lambda: subscriptions.active(ROOM))
        assert await subscribers(client, ROOM) == 1
    finally:
        await subscriptions.aclose()
        await pubsub.aclose()
