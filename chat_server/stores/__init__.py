"""Storage: history, presence, the directory, bans, read markers, rooms: memory or Redis.

Each store implements a port of ``core.ports`` twice, once in this process's
memory and once in Redis; ``build_stores`` chooses between them in one place.
"""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from chat_server.core.ports import (
    Bans,
    Directory,
    History,
    Idempotency,
    Markers,
    Presence,
    Rooms,
    WebhookQueue,
)
from chat_server.core.settings import Settings
from chat_server.stores.bans import MemoryBans, RedisBans
from chat_server.stores.directory import MemoryDirectory, RedisDirectory
from chat_server.stores.history import MemoryHistory, RedisHistory
from chat_server.stores.idempotency import MemoryIdempotency, RedisIdempotency
from chat_server.stores.keys import PLAIN, KeyLayout
from chat_server.stores.markers import MemoryMarkers, RedisMarkers
from chat_server.stores.presence import MemoryPresence, RedisPresence
from chat_server.stores.rooms import MemoryRooms, RedisRooms
from chat_server.stores.webhooks import MemoryWebhookQueue, RedisWebhookQueue

__all__ = [
    "AnyRedis",
    "build_bans",
    "build_idempotency",
    "build_markers",
    "build_rooms",
    "build_stores",
    "build_webhook_queue",
]

#: A client of one Redis or of a Redis Cluster: the stores use the commands
#: both have, with the keys ``stores/keys.py`` names for each.
AnyRedis: TypeAlias = aioredis.Redis | RedisCluster


def build_stores(
    settings: Settings, redis: AnyRedis | None, keys: KeyLayout = PLAIN
) -> tuple[History, Presence, Directory]:
    """The stores of one process: in memory without Redis, in Redis with it."""
    if redis is None:
        return MemoryHistory(settings.history_size), MemoryPresence(), MemoryDirectory()
    client: aioredis.Redis = redis  # type: ignore[assignment]  # the commands used exist on both
    return (
        RedisHistory(
            client,
            settings.history_size,
            keys,
            # The script that stores a message queues its webhook event too.
            hook_stream=keys.webhooks() if settings.webhooks else None,
            hook_cap=settings.webhook_queue_size,
        ),
        RedisPresence(client, ttl=settings.presence_ttl, keys=keys),
        RedisDirectory(client, keys),
    )


def build_bans(redis: AnyRedis | None, keys: KeyLayout = PLAIN) -> Bans:
    """Server-wide bans: in memory without Redis, shared by every process with it."""
    return MemoryBans() if redis is None else RedisBans(redis, keys)  # type: ignore[arg-type]  # as above


def build_markers(redis: AnyRedis | None, keys: KeyLayout = PLAIN) -> Markers:
    """Read markers: in memory without Redis, shared by every process with it."""
    return MemoryMarkers() if redis is None else RedisMarkers(redis, keys)  # type: ignore[arg-type]  # as above


def build_idempotency(redis: AnyRedis | None, keys: KeyLayout = PLAIN) -> Idempotency:
    """Remembered emit answers: in memory without Redis, shared by every process with it."""
    return MemoryIdempotency() if redis is None else RedisIdempotency(redis, keys)  # type: ignore[arg-type]  # as above


def build_rooms(redis: AnyRedis | None, keys: KeyLayout = PLAIN) -> Rooms:
    """The room registry: in memory without Redis, shared and kept across restarts with it."""
    return MemoryRooms() if redis is None else RedisRooms(redis, keys)  # type: ignore[arg-type]  # as above


def build_webhook_queue(
    settings: Settings, redis: AnyRedis | None, keys: KeyLayout = PLAIN
) -> WebhookQueue | None:
    """Pending webhooks: none when they are off, in memory without Redis, a stream with it."""
    if not settings.webhooks:
        return None
    if redis is None:
        return MemoryWebhookQueue(settings.webhook_queue_size)
    return RedisWebhookQueue(
        redis,  # type: ignore[arg-type]  # as above
        size=settings.webhook_queue_size,
        claim_idle=settings.webhook_claim_idle,
        key=keys.webhooks(),
    )
