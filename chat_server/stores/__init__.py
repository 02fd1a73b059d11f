"""Storage: history, presence, the directory, bans, read markers, rooms: memory or Redis.

Each store implements a port of ``core.ports`` twice, once in this process's
memory and once in Redis; ``build_stores`` chooses between them in one place.
"""

from __future__ import annotations

import redis.asyncio as aioredis

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
from chat_server.stores.markers import MemoryMarkers, RedisMarkers
from chat_server.stores.presence import MemoryPresence, RedisPresence
from chat_server.stores.rooms import MemoryRooms, RedisRooms
from chat_server.stores.webhooks import MemoryWebhookQueue, RedisWebhookQueue

__all__ = [
    "build_bans",
    "build_idempotency",
    "build_markers",
    "build_rooms",
    "build_stores",
    "build_webhook_queue",
]


def build_stores(
    settings: Settings, redis: aioredis.Redis | None
) -> tuple[History, Presence, Directory]:
    """The stores of one process: in memory without Redis, in Redis with it."""
    if redis is None:
        return MemoryHistory(settings.history_size), MemoryPresence(), MemoryDirectory()
    return (
        RedisHistory(redis, settings.history_size),
        RedisPresence(redis, ttl=settings.presence_ttl),
        RedisDirectory(redis),
    )


def build_bans(redis: aioredis.Redis | None) -> Bans:
    """Server-wide bans: in memory without Redis, shared by every process with it."""
    return MemoryBans() if redis is None else RedisBans(redis)


def build_markers(redis: aioredis.Redis | None) -> Markers:
    """Read markers: in memory without Redis, shared by every process with it."""
    return MemoryMarkers() if redis is None else RedisMarkers(redis)


def build_idempotency(redis: aioredis.Redis | None) -> Idempotency:
    """Remembered emit answers: in memory without Redis, shared by every process with it."""
    return MemoryIdempotency() if redis is None else RedisIdempotency(redis)


def build_rooms(redis: aioredis.Redis | None) -> Rooms:
    """The room registry: in memory without Redis, shared and kept across restarts with it."""
    return MemoryRooms() if redis is None else RedisRooms(redis)


def build_webhook_queue(settings: Settings, redis: aioredis.Redis | None) -> WebhookQueue | None:
    """Pending webhooks: none when they are off, in memory without Redis, a stream with it."""
    if not settings.webhooks:
        return None
    if redis is None:
        return MemoryWebhookQueue(settings.webhook_queue_size)
    return RedisWebhookQueue(
        redis, size=settings.webhook_queue_size, claim_idle=settings.webhook_claim_idle
    )
