"""What operators need: /metrics, request counts, draining on SIGTERM, background guards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit

from .api import check_key, error_response
from .errors import ChatError
from .keys import DRAIN, METRICS, REDIS_HEALTH, SOCKETS
from .metrics import CONTENT_TYPE, Metrics
from .redis_manager import ResilientRedisManager
from .service import ChatService

__all__ = [
    "Drain",
    "count_requests",
    "drain_on_sigterm",
    "guards_ctx",
    "metrics_view",
    "refuse_while_draining",
    "track_service",
]

log = logging.getLogger(__name__)

#: Seconds a draining process keeps answering 503 after closing its
#: connections, so that a load balancer still routing to it sees a clear
#: refusal (and its health check fails) instead of a refused TCP connection.
DRAIN_GRACE = 3.0
#: Paths that count as the REST API (for counting and draining).
_API_PREFIX = "/api/"
_METRICS_PATH = "/metrics"
_HEALTH_PATH = "/healthz"


class Drain:
    """Whether this process is draining (it got SIGTERM and is about to exit)."""

    def __init__(self) -> None:
        self.active = False
        self.task: asyncio.Task[None] | None = None


def _is_rest(path: str) -> bool:
    return path.startswith(_API_PREFIX) or path == _METRICS_PATH


# The middlewares are plain functions that hand a request they have nothing
# to do with straight on: returning the handler's awaitable, rather than
# awaiting it, leaves no frame of theirs alive for as long as a WebSocket
# connection lasts.


@web.middleware
def count_requests(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
    """Count REST answers by status in ``chat_http_requests_total``."""
    if not _is_rest(request.path):
        passed: Awaitable[web.StreamResponse] = handler(request)
        return passed
    return _count(request, handler)


async def _count(request: web.Request, handler: Any) -> web.StreamResponse:
    status = 500
    try:
        response: web.StreamResponse = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[METRICS].http_requests.labels(str(status)).inc()


@web.middleware
def refuse_while_draining(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
    """While draining: REST and /metrics answer 503, /healthz 503 ``{status: draining}``."""
    if request.app[DRAIN].active:
        if request.path == _HEALTH_PATH:
            return _answer(web.json_response({"status": "draining"}, status=503))
        if _is_rest(request.path):
            error = ChatError("draining", "This server is shutting down; try another one.")
            return _answer(error_response(503, error, {"Retry-After": "1"}))
    passed: Awaitable[web.StreamResponse] = handler(request)
    return passed


async def _answer(response: web.StreamResponse) -> web.StreamResponse:
    return response


async def metrics_view(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format, behind the REST API's key."""
    check_key(request)
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


def track_service(metrics: Metrics, service: ChatService) -> None:
    """Have the connection, user and room gauges read the service at each scrape."""
    sessions = service.sessions
    metrics.track(metrics.connections, lambda: len(sessions))
    metrics.track(metrics.users, lambda: len({s.user for s in sessions.values()}))
    metrics.track(
        metrics.rooms, lambda: len({room for s in sessions.values() for room in s.rooms})
    )


async def guards_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the slow-consumer sweep, the Redis health monitor and the subscription."""
    sio = app[SOCKETS]
    tasks = [asyncio.create_task(sio.eio.sweep_slow_consumers())]
    health = app[REDIS_HEALTH]
    if health is not None:
        # One check before serving, so /healthz is right from the first request.
        await health.check()
        tasks.append(asyncio.create_task(health.run()))
    manager = sio.manager
    if isinstance(manager, ResilientRedisManager):
        manager.start()
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if health is not None:
        await health.aclose()


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
