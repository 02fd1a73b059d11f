"""The application factory: builds the whole server from one ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from aiohttp import web

from . import api, fanout, ops, speedups, workers
from .config import Settings
from .directory import Directory, MemoryDirectory, RedisDirectory
from .history import History, MemoryHistory, RedisHistory
from .keys import (
    API_LIMITER,
    DRAIN,
    METRICS,
    REDIS,
    REDIS_HEALTH,
    SERVICE,
    SETTINGS,
    SOCKETS,
)
from .metrics import Metrics
from .origins import OriginPolicy
from .presence import MemoryPresence, Presence, RedisPresence
from .ratelimit import KeyedLimiter
from .redis_health import GuardedRedis, RedisHealth, client_options
from .redis_manager import ResilientRedisManager
from .service import ChatService
from .sockets import ChatSocketServer, SocketDelivery, SocketHandlers, register_handlers

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Seconds a clean shutdown may spend telling Redis its users have left.
GOODBYE_TIMEOUT = 3.0
#: Seconds each shutdown step (Engine.IO, the Redis manager, the Redis client) may take.
CLOSE_TIMEOUT = 3.0


def create_app(settings: Settings) -> web.Application:
    """Build the chat server: Socket.IO, REST API, health check and browser client."""
    middlewares = [ops.count_requests, ops.refuse_while_draining, api.json_errors]
    if settings.workers > 1:
        middlewares.insert(0, workers.websocket_only(settings.workers))
    app = web.Application(middlewares=middlewares)
    metrics = Metrics()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[DRAIN] = ops.Drain()
    rate = settings.api_rate_per_second
    app[API_LIMITER] = KeyedLimiter(burst=max(1, math.ceil(rate)), rate=rate)
    redis = _redis_client(settings)
    health = RedisHealth(settings.redis_url, metrics) if settings.redis_url is not None else None
    if redis is not None:
        redis.health = health
    app[REDIS] = redis
    app[REDIS_HEALTH] = health
    sio = _socket_server(settings, metrics)
    history, presence, directory = _stores(settings, app[REDIS])
    service = ChatService(history, presence, SocketDelivery(sio), directory)
    register_handlers(sio, SocketHandlers(settings, service))
    ops.track_service(metrics, service)
    app[SOCKETS] = sio
    app[SERVICE] = service
    sio.attach(app)
    app.add_routes(api.routes)
    app.router.add_get("/metrics", ops.metrics_view)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_sockets_ctx)
    app.cleanup_ctx.append(ops.guards_ctx)
    app.on_shutdown.append(_close_connections)
    return app


def _redis_client(settings: Settings) -> GuardedRedis | None:
    if settings.redis_url is None:
        return None
    # Bounded waits and no retry storms: a frozen Redis must not hang a handler.
    return cast(GuardedRedis, GuardedRedis.from_url(settings.redis_url, **client_options()))


def _socket_server(settings: Settings, metrics: Metrics) -> ChatSocketServer:
    direct = speedups.enabled("fanout")
    json = speedups.json_module()
    manager: Any = fanout.FanoutManager() if direct else None
    if settings.redis_url is not None:
        manager_class = fanout.FanoutRedisManager if direct else ResilientRedisManager
        manager = manager_class(
            settings.redis_url,
            channel=pubsub_channel(settings.redis_url),
            metrics=metrics,
        )
        if json is not None:
            manager.json = json
    cors: str | OriginPolicy | None = None
    if settings.cors_origins == ("*",):
        cors = "*"
    elif settings.cors_origins is not None:
        cors = OriginPolicy(settings.cors_origins)
    sio = ChatSocketServer(
        rate_burst=settings.rate_burst,
        rate_per_second=settings.rate_per_second,
        send_queue_bytes=settings.send_queue_bytes,
        metrics=metrics,
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=cors,
        # One connection's events are handled in the order it sent them.
        async_handlers=False,
        max_http_buffer_size=settings.max_payload,
        logger=False,
        engineio_logger=False,
        json=json,
    )
    if direct:
        fanout.install(sio)
    if isinstance(manager, ResilientRedisManager):
        manager.on_resubscribed = functools.partial(_announce_resync, sio)
    return sio


def _announce_resync(sio: ChatSocketServer) -> None:
    """Tell this process's clients that live delivery may have missed messages.

    While the subscription was down, messages other processes published never
    reached this one; they are in history, so clients re-join their rooms
    with ``since`` (the last id they saw) to fill the gap.
    """
    task = asyncio.get_running_loop().create_task(
        sio.emit("resync", {"reason": "redis"}, ignore_queue=True)
    )
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


def pubsub_channel(redis_url: str) -> str:
    """The pub/sub channel of the chat living in ``redis_url``'s database.

    Redis pub/sub ignores database numbers; naming the channel after the
    database keeps two chats on one Redis (``/0`` and ``/1``) apart.
    """
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])[0]
    else:
        db = parts.path.strip("/") or "0"
    return f"chat:{db}:socketio"


def _stores(
    settings: Settings, redis: aioredis.Redis | None
) -> tuple[History, Presence, Directory]:
    if redis is None:
        return MemoryHistory(settings.history_size), MemoryPresence(), MemoryDirectory()
    return (
        RedisHistory(redis, settings.history_size),
        RedisPresence(redis, ttl=settings.presence_ttl),
        RedisDirectory(redis),
    )


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keep presence entries alive while the app runs; close Redis after."""
    redis = app[REDIS]
    presence = app[SERVICE].presence
    refresher = None
    if isinstance(presence, RedisPresence):
        refresher = asyncio.create_task(presence.run_refresher())
    yield
    if refresher is not None:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
    if isinstance(presence, RedisPresence):
        # Bounded: with Redis gone, the entries expire on their own anyway.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(presence.forget_all(), GOODBYE_TIMEOUT)
    if redis is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(redis.aclose(), CLOSE_TIMEOUT)


async def _sockets_ctx(app: web.Application) -> AsyncIterator[None]:
    """Stop Engine.IO's tasks and the Redis manager's listener on the way out."""
    yield
    sio = app[SOCKETS]
    # Bounded, so that a peer or a Redis that stopped answering cannot hold
    # up the exit that a platform is waiting for.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sio.shutdown(), CLOSE_TIMEOUT)
    # AsyncServer.shutdown() leaves the pub/sub listener (and our publisher) running.
    if isinstance(sio.manager, ResilientRedisManager):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sio.manager.aclose(), CLOSE_TIMEOUT)


async def _close_connections(app: web.Application) -> None:
    """Drop every connection at the transport level, so clients reconnect elsewhere."""
    await app[SOCKETS].eio.drop_all("shutdown")
