"""Typed application keys, kept together so every module names them alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    import socketio

    from .config import Settings
    from .metrics import Metrics
    from .ops import Drain
    from .ratelimit import KeyedLimiter
    from .redis_health import RedisHealth
    from .service import ChatService

__all__ = [
    "API_LIMITER",
    "DRAIN",
    "METRICS",
    "REDIS",
    "REDIS_HEALTH",
    "SERVICE",
    "SETTINGS",
    "SOCKETS",
]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SERVICE: web.AppKey[ChatService] = web.AppKey("service")
SOCKETS: web.AppKey[socketio.AsyncServer] = web.AppKey("sockets")
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
DRAIN: web.AppKey[Drain] = web.AppKey("drain")
#: Watches the configured Redis; ``None`` without one.
REDIS_HEALTH: web.AppKey[RedisHealth | None] = web.AppKey("redis_health")
#: Token buckets of the REST API, one per API key.
API_LIMITER: web.AppKey[KeyedLimiter[str]] = web.AppKey("api_limiter")
