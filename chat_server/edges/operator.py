"""What operators read and what guards the HTTP side: /metrics, /healthz, draining."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from chat_server.core.errors import ChatError
from chat_server.core.metrics import CONTENT_TYPE, Metrics
from chat_server.core.service import ChatService
from chat_server.edges.keys import DRAIN, METRICS, REDIS_HEALTH
from chat_server.edges.rest import check_key, error_response

__all__ = [
    "add_routes",
    "count_requests",
    "healthz",
    "metrics_view",
    "refuse_while_draining",
    "track_service",
]

#: Paths that count as the REST API (for counting and draining).
_API_PREFIX = "/api/"
_METRICS_PATH = "/metrics"
_HEALTH_PATH = "/healthz"


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


async def healthz(request: web.Request) -> web.Response:
    """Liveness, and whether the configured Redis answers a ping (within a second)."""
    health = request.app[REDIS_HEALTH]
    if health is None:
        return web.json_response({"status": "ok", "redis": "disabled"})
    if not await health.check():
        return web.json_response({"status": "degraded", "redis": "down"}, status=503)
    return web.json_response({"status": "ok", "redis": "ok"})


def track_service(metrics: Metrics, service: ChatService) -> None:
    """Have the connection, user and room gauges read the service at each scrape."""
    sessions = service.sessions
    metrics.track(metrics.connections, lambda: len(sessions))
    metrics.track(metrics.users, lambda: len({s.user for s in sessions.values()}))
    metrics.track(
        metrics.rooms, lambda: len({room for s in sessions.values() for room in s.rooms})
    )


def add_routes(app: web.Application) -> None:
    """Serve ``/metrics`` and ``/healthz``."""
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
