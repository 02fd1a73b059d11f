"""Typed application keys, kept together so every module names them alike."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

    from chat_server.core.auth import Authenticator
    from chat_server.core.metrics import Metrics
    from chat_server.core.ports import Idempotency
    from chat_server.core.ratelimit import KeyedLimiter
    from chat_server.core.service import ChatService
    from chat_server.core.settings import Settings
    from chat_server.stores.redis import RedisHealth
    from chat_server.transport.server import ChatSocketServer

__all__ = [
    "API_LIMITER",
    "AUTHENTICATOR",
    "DRAIN",
    "IDEMPOTENCY",
    "METRICS",
    "OPENAPI",
    "REDIS",
    "REDIS_HEALTH",
    "SERVICE",
    "SETTINGS",
    "SOCKETS",
    "Drain",
]


class Drain:
    """Whether this process is draining (it got SIGTERM and is about to exit)."""

    def __init__(self) -> None:
        self.active = False
        self.task: asyncio.Task[None] | None = None


SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SERVICE: web.AppKey[ChatService] = web.AppKey("service")
SOCKETS: web.AppKey[ChatSocketServer] = web.AppKey("sockets")
REDIS: web.AppKey[aioredis.Redis | RedisCluster | None] = web.AppKey("redis")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DRAIN: web.AppKey[Drain] = web.AppKey("drain")
IDEMPOTENCY: web.AppKey[Idempotency] = web.AppKey("idempotency")
#: Watches the configured Redis; ``None`` without one.
REDIS_HEALTH: web.AppKey[RedisHealth | None] = web.AppKey("redis_health")
#: Token buckets of the REST API, one per API key.
API_LIMITER: web.AppKey[KeyedLimiter[str]] = web.AppKey("api_limiter")
#: Who a new connection is: guest mode, or the token verifier of token mode.
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
#: The REST API's OpenAPI document as JSON, built once when the app is made.
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi")
