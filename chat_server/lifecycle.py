"""The process's life: resources opened and closed in ``cleanup_ctx``, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.web_runner import GracefulExit
from redis.asyncio.cluster import RedisCluster

from chat_server.core.tokens import TokenVerifier
from chat_server.core.webhooks import RetryPolicy
from chat_server.edges.keys import (
    AUTHENTICATOR,
    DRAIN,
    METRICS,
    REDIS,
    REDIS_HEALTH,
    SERVICE,
    SETTINGS,
    SOCKETS,
)
from chat_server.stores.presence import RedisPresence
from chat_server.transport.bus import ResilientRedisManager
from chat_server.transport.hookclient import HookClient
from chat_server.transport.webhooks import ATTEMPT_TIMEOUT, WebhookWorker

__all__ = ["close_connections", "drain", "drain_on_sigterm", "install"]

log = logging.getLogger(__name__)

#: Seconds a clean shutdown may spend telling Redis its users have left.
GOODBYE_TIMEOUT = 3.0
#: Seconds each shutdown step (Engine.IO, the Redis manager, the Redis client) may take.
CLOSE_TIMEOUT = 3.0
#: Seconds a draining process keeps answering 503 after closing its
#: connections, so that a load balancer still routing to it sees a clear
#: refusal (and its health check fails) instead of a refused TCP connection.
DRAIN_GRACE = 3.0


def install(app: web.Application) -> None:
    """Open and close the app's resources with it, in dependency order."""
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(sockets_ctx)
    app.cleanup_ctx.append(guards_ctx)
    app.cleanup_ctx.append(jwks_ctx)
    # After redis_ctx, so that it stops before the Redis client closes.
    app.cleanup_ctx.append(webhooks_ctx)
    app.on_shutdown.append(close_connections)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keep presence entries alive while the app runs; close Redis after.

    A cluster client reads the slot table before the first request: left to
    the first burst of calls, redis-py 8's client rebuilds its node table
    under calls in flight, which then write to closed connections.
    """
    redis = app[REDIS]
    if isinstance(redis, RedisCluster):
        try:
            await asyncio.wait_for(redis.initialize(), CLOSE_TIMEOUT)
        except Exception as exc:  # the health check reports it; calls retry it
            log.warning("could not read the Redis Cluster's slots at start-up: %s", exc)
    presence = app[SERVICE].presence
    refresher = None
    if isinstance(presence, RedisPresence):
        refresher = asyncio.create_task(presence.run_refresher())
    yield
    await _cancel(refresher)
    if isinstance(presence, RedisPresence):
        # Bounded: with Redis gone, the entries expire on their own anyway.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(presence.forget_all(), GOODBYE_TIMEOUT)
    if redis is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(redis.aclose(), CLOSE_TIMEOUT)


async def sockets_ctx(app: web.Application) -> AsyncIterator[None]:
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


async def guards_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the slow-consumer sweep, the Redis health monitor and the subscription."""
    sio = app[SOCKETS]
    tasks = [asyncio.create_task(sio.eio.sweep_slow_consumers())]
    health = app[REDIS_HEALTH]
    if health is not None:
        # One check before serving, so /healthz is right from the first request.
        await health.check()
        tasks.append(asyncio.create_task(health.run()))
    if isinstance(sio.manager, ResilientRedisManager):
        sio.manager.start()
    yield
    for task in tasks:
        await _cancel(task)
    if health is not None:
        await health.aclose()


async def jwks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Fetch the identity provider's keys in the background as the server starts.

    Not awaited: a provider that is down must not keep the chat from
    starting; tokens are refused with ``invalid_token`` until it answers.
    """
    verifier = app[AUTHENTICATOR].verifier
    jwks = verifier.jwks if isinstance(verifier, TokenVerifier) else None
    prefetch = asyncio.create_task(jwks.refresh()) if jwks is not None else None
    yield
    if prefetch is not None:
        prefetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prefetch
    if jwks is not None:
        await jwks.aclose()


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run this process's webhook delivery worker, with an HTTP client of its own.

    On the way out, deliveries still pending stay in the Redis stream, where
    another process (or this one, restarted) claims them; without Redis they
    end with the process.
    """
    queue = app[SERVICE].webhooks.queue
    settings = app[SETTINGS]
    if queue is None or settings.webhook_secret is None:
        yield
        return
    # Our own small HTTP/1.1 client: aiohttp's costs ~8x the CPU per POST.
    client = HookClient(per_url=settings.webhook_concurrency, timeout=ATTEMPT_TIMEOUT)
    worker = WebhookWorker(
        queue,
        client,
        secret=settings.webhook_secret,
        policy=RetryPolicy(
            settings.webhook_retry_base, settings.webhook_retry_cap, settings.webhook_max_age
        ),
        metrics=app[METRICS],
        concurrency=settings.webhook_concurrency,
        keep_every=settings.webhook_claim_idle / 3,
        # Redis: read the stream in batches (one XREADGROUP per 5 ms at most
        # when busy); memory: nothing to save.
        linger=0.005 if settings.redis_url is not None else 0.0,
    )
    task = asyncio.create_task(worker.run())
    yield
    worker.stop()
    done, _ = await asyncio.wait([task], timeout=CLOSE_TIMEOUT)
    if not done:
        log.warning("the webhook worker did not stop within %.0f s", CLOSE_TIMEOUT)
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
    await client.aclose()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def close_connections(app: web.Application) -> None:
    """Drop every connection at the transport level, so clients reconnect elsewhere."""
    await app[SOCKETS].eio.drop_all("shutdown")


async def drain_on_sigterm(app: web.Application) -> None:
    """An ``on_startup`` hook: on SIGTERM, drain instead of stopping at once.

    aiohttp's runner installs its own handler before the app starts up; this
    one replaces it for SIGTERM only, so Ctrl-C still stops at once. Only the
    command line installs it: an app inside a test process must not take over
    that process's signals.
    """
    loop = asyncio.get_running_loop()
    state = app[DRAIN]

    def start() -> None:
        if state.task is None:
            state.task = loop.create_task(drain(app))

    loop.add_signal_handler(signal.SIGTERM, start)


async def drain(app: web.Application, grace: float = DRAIN_GRACE) -> None:
    """Refuse new work, close every connection, wait ``grace`` seconds, then exit."""
    state = app[DRAIN]
    if state.active:
        return
    state.active = True
    sio = app[SOCKETS]
    sio.eio.draining = True
    closed = await sio.eio.drop_all("draining")
    log.info("SIGTERM: closed %d connections; exiting in %.0f s", closed, grace)
    await asyncio.sleep(grace)
    asyncio.get_running_loop().call_soon(_exit)


def _exit() -> None:
    # Raised from a loop callback, this ends web.run_app() the way its own
    # signal handler does: cleanly, with exit status 0.
    raise GracefulExit()
