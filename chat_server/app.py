"""The application factory: builds the whole server from one ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
import socketio
from aiohttp import web

from . import api
from .config import Settings
from .history import History, MemoryHistory, RedisHistory
from .keys import REDIS, SERVICE, SETTINGS, SOCKETS
from .origins import OriginPolicy
from .presence import MemoryPresence, Presence, RedisPresence
from .service import ChatService
from .sockets import ChatSocketServer, SocketDelivery, SocketHandlers, register_handlers

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: Seconds any single Redis command may take before it counts as failed, so
#: that a frozen Redis turns into an error answer instead of a hung handler.
REDIS_TIMEOUT = 5.0


def create_app(settings: Settings) -> web.Application:
    """Build the chat server: Socket.IO, REST API, health check and browser client."""
    app = web.Application(middlewares=[api.json_errors])
    app[SETTINGS] = settings
    app[REDIS] = _redis_client(settings)
    sio = _socket_server(settings)
    history, presence = _stores(settings, app[REDIS])
    service = ChatService(history, presence, SocketDelivery(sio))
    register_handlers(sio, SocketHandlers(settings, service))
    app[SOCKETS] = sio
    app[SERVICE] = service
    sio.attach(app)
    app.add_routes(api.routes)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_sockets_ctx)
    app.on_shutdown.append(_close_connections)
    return app


def _redis_client(settings: Settings) -> aioredis.Redis | None:
    if settings.redis_url is None:
        return None
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        health_check_interval=15,
    )


def _socket_server(settings: Settings) -> ChatSocketServer:
    manager = None
    if settings.redis_url is not None:
        manager = socketio.AsyncRedisManager(
            settings.redis_url,
            channel=pubsub_channel(settings.redis_url),
            redis_options={"socket_connect_timeout": REDIS_TIMEOUT},
        )
    cors: str | OriginPolicy | None = None
    if settings.cors_origins == ("*",):
        cors = "*"
    elif settings.cors_origins is not None:
        cors = OriginPolicy(settings.cors_origins)
    return ChatSocketServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=cors,
        # One connection's events are handled in the order it sent them.
        async_handlers=False,
        max_http_buffer_size=settings.max_payload,
        logger=False,
        engineio_logger=False,
    )


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


def _stores(settings: Settings, redis: aioredis.Redis | None) -> tuple[History, Presence]:
    if redis is None:
        return MemoryHistory(settings.history_size), MemoryPresence()
    return (
        RedisHistory(redis, settings.history_size),
        RedisPresence(redis, ttl=settings.presence_ttl),
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
        await presence.forget_all()
    if redis is not None:
        await redis.aclose()


async def _sockets_ctx(app: web.Application) -> AsyncIterator[None]:
    """Stop Engine.IO's tasks and the Redis manager's listener on the way out."""
    yield
    sio = app[SOCKETS]
    await sio.shutdown()
    # AsyncServer.shutdown() leaves the pub/sub listener running.
    listener = getattr(sio.manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    pubsub_redis = getattr(sio.manager, "redis", None)
    if pubsub_redis is not None:
        await pubsub_redis.aclose()


async def _close_connections(app: web.Application) -> None:
    """Drop every connection at the transport level, so clients reconnect elsewhere."""
    sio = app[SOCKETS]
    for socket in list(sio.eio.sockets.values()):
        with contextlib.suppress(Exception):
            await socket.close(wait=False, abort=True)
