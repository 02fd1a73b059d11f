"""Engine.IO transport guards: screened input, capped send queues, refused handshakes.

python-engineio hands whatever arrives to its decoders and queues whatever goes
out without bound. ``GuardedEngineServer`` puts a bouncer at each door:

- every incoming WebSocket frame and long-polling packet is screened before
  python-engineio decodes it: binary data, undecodable packets and Socket.IO
  packets announcing binary attachments close the connection that sent them;
- every connection's outgoing queue counts its bytes; past ``send_queue_bytes``
  (queued packets plus what the TCP transport holds unsent) the connection is
  dropped as a slow consumer, so one client that stops reading cannot make the
  server buffer without end;
- new handshakes are refused before python-engineio sees them: with 503
  while draining (SIGTERM) or once the process holds ``max_connections``, and
  with 429 when the client address has used up its handshake allowance. A
  refused WebSocket handshake is answered before the upgrade, so a refusal
  costs one small HTTP answer and no session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import engineio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from chat_server.core.addresses import Network, client_address
from chat_server.core.errors import ChatError
from chat_server.core.metrics import Metrics
from chat_server.core.ratelimit import KeyedLimiter, retry_after_header
from chat_server.transport.screening import screen_packet
from chat_server.transport.sendqueue import DELIVERED_KINDS, SendQueue
from chat_server.transport.websocket import GuardedWebSocket, serve_websocket

__all__ = ["GuardedEngineServer"]

log = logging.getLogger(__name__)

#: Seconds a refused connection gets to flush its goodbye before the TCP
#: connection is cut regardless.
GOODBYE_GRACE = 1.0
#: Seconds between two sweeps for connections whose TCP buffer outgrew the cap.
SWEEP_INTERVAL = 1.0
#: HTTP methods of the Engine.IO endpoint (OPTIONS for CORS preflight).
_METHODS = frozenset({"GET", "POST", "OPTIONS"})
#: Packets one long-polling POST may carry (python-engineio's own cap).
MAX_POLLING_PACKETS = 16
#: Socket.IO DISCONNECT for the default namespace, inside an Engine.IO MESSAGE:
#: tells a well-behaved client not to reconnect.
_GOODBYE = "1"


def _ping(server: GuardedEngineServer, socket: Any) -> None:
    """What python-engineio's ``_send_ping`` does once its sleep is over.

    Then, unlike python-engineio, it starts the ``pingTimeout`` clock: a client
    whose PONG has not come back by then is closed at that deadline, on every
    transport (python-engineio notices only when something is next sent).
    """
    socket.chat_ping_task = None
    if not socket.closing and not socket.closed:
        socket.last_ping = time.time()
        # AsyncSocket.send would first check the ping timeout, which cannot
        # have passed with last_ping just set; the queue is unbounded.
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
        loop = asyncio.get_running_loop()
        socket.chat_ping_task = loop.call_later(server.ping_timeout, _pong_overdue, server, socket)


def _pong_overdue(server: GuardedEngineServer, socket: Any) -> None:
    socket.chat_ping_task = None
    # A PONG sets last_ping to None (and schedules the next ping).
    if socket.last_ping is not None and not socket.closed:
        expired = server.drop(socket.sid, "ping_timeout", reason=server.reason.PING_TIMEOUT)
        server.spawn(expired)


def _create_route(app: web.Application, server: GuardedEngineServer, path: str) -> None:
    """Route every method to the server, which answers the unsupported ones 400.

    python-engineio registers GET, POST and OPTIONS only, so aiohttp's router
    would answer 405 where Engine.IO v4 says 400.
    """
    app.router.add_route("*", path, server.handle_request)


async def _close_intruder(request: web.Request) -> web.StreamResponse:
    """Accept, then close, a second WebSocket for a session already upgraded.

    python-engineio refuses it with 400 before the upgrade; Engine.IO v4 (and
    its reference server) ignore it by closing it, leaving the first one be.
    """
    ws = web.WebSocketResponse()
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="Not a WebSocket request.")
    await ws.prepare(request)
    await ws.close()
    return ws


class _Body:
    """The already-read body of a polling POST, as python-engineio reads it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self, length: int = -1) -> bytes:
        return self._body


class GuardedEngineServer(engineio.AsyncServer):  # type: ignore[misc]  # untyped base (python-engineio)
    """An Engine.IO server with screened input and bounded output per connection.

    :param send_queue_bytes: outgoing bytes held for one connection beyond
        what its TCP socket accepted; past it the connection is dropped.
    :param metrics: where refusals and drops are counted.
    :param max_connections: Engine.IO sessions this process holds at most;
        a handshake beyond is answered 503 ``server_full`` (10000).
    :param connect_limiter: handshakes allowed per client address; ``None``
        is no limit. Beyond it, 429 ``rate_limited`` with ``Retry-After``.
    :param trusted_proxies: peers whose ``X-Forwarded-For`` names the client.
    :param kwargs: python-engineio's own options.
    """

    #: python-engineio's table of transport drivers, set by its constructor.
    _async: dict[str, Any]

    def __init__(
        self,
        *,
        send_queue_bytes: int,
        metrics: Metrics,
        max_connections: int = 10000,
        connect_limiter: KeyedLimiter[str] | None = None,
        trusted_proxies: tuple[Network, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.send_queue_bytes = send_queue_bytes
        self.metrics = metrics
        self.max_connections = max_connections
        self.connect_limiter = connect_limiter
        self.trusted_proxies = trusted_proxies
        self.draining = False
        self._delivered = {
            kind: metrics.messages_delivered.labels(kind) for kind in DELIVERED_KINDS
        }
        self._tasks: set[asyncio.Task[None]] = set()
        # A copy: the driver table is shared by every server of the process.
        self._async = {
            **self._async,
            "websocket": GuardedWebSocket,
            "translate_request": self._translate_request,
            "create_route": _create_route,
        }
        #: Upgraded WebSockets to serve once python-engineio has answered their
        #: request, by the request's id (``serve_later``).
        self._serve_later: dict[int, GuardedWebSocket] = {}
        #: Sessions with a polling GET, and with a polling POST, in flight.
        self._polling: dict[str, set[str]] = {"GET": set(), "POST": set()}

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(target, "__name__", None) == "_send_ping" and not args and not kwargs:
            # python-engineio's ping is a task sleeping 25 s for every
            # connection; a timer does the same wait for a fraction of the memory.
            socket = target.__self__
            previous = getattr(socket, "chat_ping_task", None)
            if previous is not None:
                previous.cancel()  # the pong deadline of the ping just answered
            handle = asyncio.get_running_loop().call_later(self.ping_interval, _ping, self, socket)
            socket.chat_ping_task = handle
            return handle
        return super().start_background_task(target, *args, **kwargs)

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` in the background, kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, sid: str) -> None:
        """Release what a closed connection still holds (its pending ping)."""
        socket = self.sockets.get(sid)
        handle = getattr(socket, "chat_ping_task", None)
        if handle is not None:
            handle.cancel()
            socket.chat_ping_task = None

    # -- outgoing --------------------------------------------------------------

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return super().create_queue(*args, **kwargs)
        return SendQueue(
            self.send_queue_bytes, self._overflowed, self._count_delivery, self._announce
        )

    def _announce(self, opening: Any) -> None:
        """Put the exact heartbeat in a session's OPEN packet.

        python-engineio announces ``int(seconds) * 1000`` for the ping
        interval, so a fractional interval (0.4 s) would be announced as 0
        and clients would ping-timeout at once; Engine.IO wants milliseconds.
        """
        if isinstance(opening.data, dict):
            opening.data["pingInterval"] = round(
                (self.ping_interval + self.ping_interval_grace_period) * 1000
            )
            opening.data["pingTimeout"] = round(self.ping_timeout * 1000)

    def _count_delivery(self, kind: str) -> None:
        self._delivered[kind].inc()

    def _overflowed(self, queue: SendQueue) -> None:
        for sid, socket in self.sockets.items():
            if socket.queue is queue:
                self.spawn(self.drop(sid, "slow_consumer"))
                return

    def held_bytes(self, socket: Any) -> int:
        """Outgoing bytes the server holds for ``socket`` that its TCP socket has not taken."""
        queue = socket.queue
        held = queue.nbytes if isinstance(queue, SendQueue) else 0
        transport = getattr(socket, "chat_transport", None)
        if transport is not None and not transport.is_closing():
            held += transport.get_write_buffer_size()
        return held

    async def sweep_slow_consumers(self, interval: float = SWEEP_INTERVAL) -> None:
        """Forever: drop connections holding more than ``send_queue_bytes`` unsent.

        The queue itself catches a backlog the moment it forms; this sweep
        catches bytes written straight to the TCP transport, past the queue.
        """
        while True:
            await asyncio.sleep(interval)
            for sid, socket in list(self.sockets.items()):
                if not socket.closed and self.held_bytes(socket) > self.send_queue_bytes:
                    await self.drop(sid, "slow_consumer")

    # -- dropping connections ----------------------------------------------------

    async def refuse(self, sid: str, reason: str) -> None:
        """Count a refused input and close the connection that sent it, with a goodbye."""
        self.metrics.rejected_inputs.labels(reason).inc()
        log.info("closing connection sid=%s: refused input (%s)", sid, reason)
        await self.drop(sid, reason, goodbye=reason != "too_large")

    async def drop(
        self,
        sid: str,
        why: str,
        *,
        goodbye: bool = False,
        reason: Any = None,
        farewell: str | None = None,
    ) -> None:
        """Close connection ``sid`` now, running the chat's disconnect handling.

        ``why`` labels ``chat_disconnects_total``; ``reason`` is the close
        reason python-socketio hands the disconnect handler (a transport
        error unless given). With ``goodbye`` the client first gets a
        Socket.IO DISCONNECT, which tells well-behaved clients not to
        reconnect; without it the TCP connection is cut at once and clients
        reconnect by themselves. ``farewell``, an encoded Socket.IO packet,
        goes out just before the goodbye (what was still queued does not).
        """
        socket = self.sockets.get(sid)
        if socket is None or socket.closed or socket.closing:
            return
        self.metrics.disconnects.labels(why).inc()
        if why == "slow_consumer":
            log.warning("dropping connection sid=%s: slow consumer", sid)
        queue = socket.queue
        transport = getattr(socket, "chat_transport", None)
        if isinstance(queue, SendQueue):
            queue.discard()
            if goodbye and farewell is not None:
                queue.force_put(eio_packet.Packet(eio_packet.MESSAGE, farewell))
            if goodbye:
                queue.force_put(eio_packet.Packet(eio_packet.MESSAGE, _GOODBYE))
        await socket.close(wait=False, abort=True, reason=reason or self.reason.TRANSPORT_ERROR)
        if isinstance(queue, SendQueue):
            queue.force_put(None)  # ends the writer task or a pending long-poll
        self.sockets.pop(sid, None)
        if transport is not None:
            if goodbye:
                asyncio.get_running_loop().call_later(GOODBYE_GRACE, transport.abort)
            else:
                transport.abort()

    async def drop_all(self, why: str) -> int:
        """Cut every connection (clients reconnect by themselves); returns how many."""
        sids = [sid for sid, socket in self.sockets.items() if not socket.closed]
        for sid in sids:
            await self.drop(sid, why)
        return len(sids)

    # -- incoming ------------------------------------------------------------------

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        if request.method not in _METHODS:
            # python-engineio answers 405; Engine.IO v4 says 400.
            return web.Response(status=400, text="Unsupported request method.")
        if "sid" not in query:
            if self.draining:
                self.metrics.handshakes_refused.labels("draining").inc()
                return web.Response(
                    status=503,
                    text="This server is restarting; connect again shortly.",
                    headers={"Retry-After": "1"},
                )
            if request.method == "GET" and query.get("transport") not in self.transports:
                # python-engineio would assume polling; the protocol says 400.
                return web.Response(status=400, text="The transport query parameter is missing.")
            if request.method == "GET":
                refusal = self._refuse_handshake(request)
                if refusal is not None:
                    return refusal
        sid = query.get("sid")
        if sid is not None and query.get("transport") == "websocket":
            socket = self.sockets.get(sid)
            if socket is not None and socket.upgraded and request.method == "GET":
                return await _close_intruder(request)
        if sid is None or query.get("transport") != "polling" or request.method == "OPTIONS":
            try:
                response: web.StreamResponse = await super().handle_request(request)
            finally:
                ws = self._serve_later.pop(id(request), None)
            if ws is not None:
                # What python-engineio does once its handler returns, in
                # _handle_connect (a new session) and in handle_request (an
                # upgrade from polling): a closed socket leaves ``sockets``.
                socket = ws.socket
                await serve_websocket(socket, ws)
                if socket.closed:
                    self.sockets.pop(socket.sid, None)
            return response
        return await self._poll(request, sid)

    def serve_later(self, request: web.Request, ws: GuardedWebSocket) -> None:
        """Serve ``ws`` once python-engineio has answered ``request`` (``handle_request``)."""
        self._serve_later[id(request)] = ws

    async def _poll(self, request: web.Request, sid: str) -> web.StreamResponse:
        """One long-polling request of session ``sid``; a second concurrent one ends it.

        Engine.IO v4 allows one pending GET and one pending POST per
        session; python-engineio would serve both and leave the first GET
        hanging. Here the intruder is answered 400 and the session closed,
        which also answers the first GET.
        """
        in_flight = self._polling[request.method]
        if sid in in_flight:
            self.metrics.rejected_inputs.labels("concurrent_poll").inc()
            await self.drop(sid, "concurrent_poll")
            return web.Response(status=400, text="Another request of this session is pending.")
        in_flight.add(sid)
        try:
            response: web.StreamResponse = await super().handle_request(request)
        finally:
            in_flight.discard(sid)
        if request.method == "POST":
            await self._after_post(sid)
            if isinstance(response, web.Response) and response.status == 200:
                response.text = "ok"  # python-engineio says OK; the protocol says ok
        return response

    def _refuse_handshake(self, request: web.Request) -> web.Response | None:
        """The answer to a handshake over a limit, or ``None`` to let it through.

        Checked before python-engineio makes a session or upgrades a
        WebSocket, so that a flood of handshakes costs as little as possible.
        """
        if len(self.sockets) >= self.max_connections:
            self.metrics.handshakes_refused.labels("server_full").inc()
            error = ChatError("server_full", "This server is full; try again later.")
            return web.json_response(error.to_reply(), status=503, headers={"Retry-After": "5"})
        if self.connect_limiter is None:
            return None
        address = client_address(
            request.remote, request.headers.getall("X-Forwarded-For", []), self.trusted_proxies
        )
        wait = self.connect_limiter.take(address)
        if not wait:
            return None
        self.metrics.handshakes_refused.labels("rate_limited").inc()
        error = ChatError(
            "rate_limited", "Too many connections from your address.", retry_after=wait
        )
        return web.json_response(
            error.to_reply(), status=429, headers={"Retry-After": retry_after_header(wait)}
        )

    async def _after_post(self, sid: str) -> None:
        """End a long-polling session whose client just sent CLOSE."""
        socket = self.sockets.get(sid)
        if socket is not None and socket.closed and not socket.upgraded:
            # python-engineio marks it closed but leaves its pending GET
            # waiting out the heartbeat; the protocol wants it answered now.
            socket.queue.force_put(eio_packet.Packet(eio_packet.NOOP))
            socket.queue.force_put(None)
            self.sockets.pop(sid, None)

    async def _translate_request(self, request: web.Request) -> dict[str, Any]:
        environ: dict[str, Any] = eio_aiohttp.translate_request(request)
        if request.method == "POST":
            body = await self._screen_post(request)
            environ["wsgi.input"] = _Body(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    async def _screen_post(self, request: web.Request) -> bytes:
        """Read and check a long-polling POST before python-engineio decodes it."""
        sid = request.query.get("sid")
        limit = self.max_http_buffer_size
        declared = request.content_length
        if declared is not None and declared > limit:
            await self._refuse_post(sid, "too_large")
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > limit:
                await self._refuse_post(sid, "too_large")
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
        try:
            packets = body.decode("utf-8").split("\x1e")
        except UnicodeDecodeError:
            await self._refuse_post(sid, "malformed")
            raise web.HTTPBadRequest(text="The body is not UTF-8.") from None
        if len(packets) > MAX_POLLING_PACKETS:
            await self._refuse_post(sid, "malformed")
            raise web.HTTPBadRequest(text="Too many packets in one request.")
        for packet in packets:
            reason = screen_packet(packet)
            if reason is not None:
                await self._refuse_post(sid, reason)
                raise web.HTTPBadRequest(text=f"Packet refused ({reason}).")
        return bytes(body)

    async def _refuse_post(self, sid: str | None, reason: str) -> None:
        if sid is not None and sid in self.sockets:
            await self.refuse(sid, reason)
        else:
            self.metrics.rejected_inputs.labels(reason).inc()
