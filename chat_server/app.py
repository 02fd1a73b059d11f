"""The composition root: ``create_app`` builds the whole server from one ``Settings``."""

from __future__ import annotations

import asyncio
import functools
import math
from pathlib import Path
from typing import Any

from aiohttp import web

from chat_server import lifecycle, workers
from chat_server.core import catchup, tokens
from chat_server.core.auth import Authenticator
from chat_server.core.metrics import Metrics
from chat_server.core.ratelimit import KeyedLimiter
from chat_server.core.service import ChatService
from chat_server.core.settings import Settings
from chat_server.core.webhooks import Webhooks
from chat_server.edges import headers, openapi, operator, rest
from chat_server.edges.keys import (
    API_LIMITER,
    AUTHENTICATOR,
    DRAIN,
    IDEMPOTENCY,
    METRICS,
    REDIS,
    REDIS_HEALTH,
    SERVICE,
    SETTINGS,
    SOCKETS,
    Drain,
)
from chat_server.edges.origins import OriginPolicy
from chat_server.edges.sockets import SocketHandlers, register_handlers
from chat_server.stores import (
    build_bans,
    build_idempotency,
    build_markers,
    build_rooms,
    build_stores,
    build_webhook_queue,
)
from chat_server.stores.keys import KeyLayout
from chat_server.stores.redis import RedisHealth, connect
from chat_server.transport import speedups
from chat_server.transport.bus import ResilientRedisManager, pubsub_channel
from chat_server.transport.delivery import SocketDelivery
from chat_server.transport.fanout import LocalManager
from chat_server.transport.gapfill import GapFiller
from chat_server.transport.server import ChatSocketServer

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings) -> web.Application:
    """Build the chat server: Socket.IO, REST API, health check and browser client."""
    pages = headers.HeaderPolicy(
        headers.content_security_policy(STATIC_DIR / "index.html", settings.cors_origins)
    )
    middlewares = [
        operator.count_requests,
        operator.refuse_while_draining,
        rest.json_errors,
        pages.middleware,
    ]
    if settings.workers > 1:
        middlewares.insert(0, workers.websocket_only(settings.workers))
    app = web.Application(middlewares=middlewares)
    app.on_response_prepare.append(headers.hide_versions)
    metrics = Metrics()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[DRAIN] = Drain()
    rate = settings.api_rate_per_second
    app[API_LIMITER] = KeyedLimiter(burst=max(1, math.ceil(rate)), rate=rate)
    target = settings.redis
    redis = (
        None
        if target is None
        else connect(
            target,
            pool_size=settings.redis_pool_size,
            pool_wait=settings.redis_pool_wait,
            metrics=metrics,
        )
    )
    keys = KeyLayout(cluster=target is not None and target.cluster)
    health = RedisHealth(settings.redis_url, metrics) if settings.redis_url is not None else None
    if redis is not None:
        redis.health = health
    app[REDIS] = redis
    app[IDEMPOTENCY] = build_idempotency(redis, keys)
    app[REDIS_HEALTH] = health
    sio = _socket_server(settings, metrics)
    history, presence, directory = build_stores(settings, redis, keys)
    delivery = SocketDelivery(sio)
    service = ChatService(
        history,
        presence,
        directory,
        delivery=delivery,
        bans=build_bans(redis, keys),
        rooms=build_rooms(redis, keys),
        markers=build_markers(redis, keys),
        webhooks=Webhooks.from_settings(
            settings, build_webhook_queue(settings, redis, keys), metrics
        ),
    )
    delivery.on_evict = service.evict_local
    if isinstance(sio.manager, ResilientRedisManager):
        sio.manager.gap_filler = GapFiller(catchup.finder(history, directory), metrics)
    authenticator = Authenticator(tokens.build_verifier(settings))
    app[AUTHENTICATOR] = authenticator
    register_handlers(sio, SocketHandlers(service, metrics, authenticator))
    operator.track_service(metrics, service)
    app[SOCKETS] = sio
    app[SERVICE] = service
    sio.attach(app)
    app.add_routes(rest.routes)
    operator.add_routes(app)
    openapi.add_routes(app)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    lifecycle.install(app)
    return app


def _socket_server(settings: Settings, metrics: Metrics) -> ChatSocketServer:
    json = speedups.json_module(settings.speedup("orjson"))
    manager: Any = LocalManager()
    if settings.redis_url is not None:
        manager = ResilientRedisManager(
            settings.redis_url,
            channel=pubsub_channel(settings.redis_url),
            metrics=metrics,
            per_room=settings.bus_routing == "rooms",
            json=json,
        )
    cors: str | OriginPolicy | None = None
    if settings.cors_origins == ("*",):
        cors = "*"
    elif settings.cors_origins is not None:
        cors = OriginPolicy(settings.cors_origins)
    connect_limiter = None
    if settings.connect_rate_per_ip is not None:
        per_ip = settings.connect_rate_per_ip
        # Bounded memory: past 10,000 addresses the least recent is forgotten.
        connect_limiter = KeyedLimiter[str](burst=max(1, math.ceil(per_ip)), rate=per_ip)
    sio = ChatSocketServer(
        handshake_limits={
            "max_connections": settings.max_connections,
            "connect_limiter": connect_limiter,
            "trusted_proxies": settings.trusted_proxies,
        },
        rate_burst=settings.rate_burst,
        rate_per_second=settings.rate_per_second,
        send_queue_bytes=settings.send_queue_bytes,
        metrics=metrics,
        direct_fanout=settings.speedup("fanout"),
        connect_timeout=settings.connect_timeout,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
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


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")
