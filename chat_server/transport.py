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
- while draining (SIGTERM), new handshakes are refused with 503.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import engineio
import engineio.exceptions
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_websocket import WebSocketError
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from .metrics import Metrics

__all__ = ["GuardedEngineServer", "SendQueue", "screen_packet"]

log = logging.getLogger(__name__)

#: Seconds a refused connection gets to flush its goodbye before the TCP
#: connection is cut regardless.
GOODBYE_GRACE = 1.0
#: Seconds between two sweeps for connections whose TCP buffer outgrew the cap.
SWEEP_INTERVAL = 1.0
#: Packets one long-polling POST may carry (python-engineio's own cap).
MAX_POLLING_PACKETS = 16
#: Engine.IO packet types a client may send, as their one-character codes.
_EIO_TYPES = frozenset("0123456")
#: Socket.IO DISCONNECT for the default namespace, inside an Engine.IO MESSAGE:
#: tells a well-behaved client not to reconnect.
_GOODBYE = "1"
#: Events whose deliveries ``chat_messages_delivered_total`` counts.
DELIVERED_KINDS = ("message", "private_message", "announcement")


def screen_packet(packet: str) -> str | None:
    """Why one encoded Engine.IO packet from a client is refused, or ``None``.

    Only the first two characters are looked at: that is enough to tell an
    Engine.IO packet type from garbage, and a Socket.IO BINARY_EVENT (5) or
    BINARY_ACK (6), which would make python-socketio wait for attachments.
    """
    if not packet:
        return "malformed"
    kind = packet[0]
    if kind == "b":  # base64 binary message of the polling transport
        return "binary"
    if kind not in _EIO_TYPES:
        return "malformed"
    if kind == "4" and packet[1:2] in ("5", "6"):
        return "binary"
    return None


def packet_size(item: Any) -> int:
    """Bytes an Engine.IO packet takes on the wire (about: framing aside)."""
    if item is None:
        return 0
    data = item.data
    if isinstance(data, str):
        # isascii() is O(1) in CPython, so the common case costs nothing more.
        return 1 + (len(data) if data.isascii() else len(data.encode("utf-8", "replace")))
    if isinstance(data, bytes | bytearray):
        return 1 + len(data)
    if data is None:
        return 1
    return 64  # the OPEN packet's small dict


class SendQueue:
    """A connection's outgoing queue that knows how many bytes it holds.

    :param limit: bytes it may hold; a packet that would take it past the limit
        (while it holds anything at all) is not queued, ``overflowed`` becomes
        true and ``on_overflow(queue)`` is called once.
    :param on_overflow: called when the limit is first exceeded.
    :param on_delivered: called with the event name of each chat packet
        (``message``, ``private_message``, ``announcement``) queued.

    A packet larger than the limit is still taken when the queue is empty, so
    that a small limit delays rather than forbids a large join answer.

    python-engineio's WebSocket writer takes *everything* queued at once and
    then writes it packet by packet, waiting on the TCP transport; with a
    client that stopped reading, the backlog sits in the writer's hands, not
    in the queue. So with ``writes_on_send`` (set by the WebSocket driver) a
    packet's bytes stay counted until ``sent()`` says it was written.

    It implements the part of ``asyncio.Queue`` that python-engineio uses
    (``put``, ``put_nowait``, ``get``, ``get_nowait``, ``task_done``,
    ``join``, ``empty``, ``qsize``), unbounded, with ``asyncio.Queue``'s
    wake-up order. An ``asyncio.Queue`` holds three deques and an ``Event``
    (another deque), about 2.5 KiB before its first packet, for every idle
    connection; here a deque exists only while it holds something.
    """

    __slots__ = (
        "_getters",
        "_items",
        "_joiners",
        "_on_delivered",
        "_on_overflow",
        "_unfinished",
        "_unsent",
        "limit",
        "nbytes",
        "overflowed",
        "writes_on_send",
    )

    def __init__(
        self,
        limit: int,
        on_overflow: Callable[[SendQueue], None],
        on_delivered: Callable[[str], None] | None = None,
    ) -> None:
        self.limit = limit
        self.nbytes = 0
        self.overflowed = False
        self._on_overflow = on_overflow
        self._on_delivered = on_delivered
        self.writes_on_send = False
        self._items: collections.deque[Any] | None = None
        #: Futures of ``get()`` calls waiting for a packet, oldest first.
        self._getters: list[asyncio.Future[None]] = []
        self._unsent: collections.deque[int] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def parked(self) -> bool:
        """Whether the queue is empty and a consumer is waiting in ``get()``."""
        return not self._items and bool(self._getters)

    def put_nowait(self, item: Any) -> None:
        size = packet_size(item)
        if item is not None and (
            self.overflowed or (self.nbytes and self.nbytes + size > self.limit)
        ):
            if not self.overflowed:
                self.overflowed = True
                self._on_overflow(self)
            return
        if self._on_delivered is not None and item is not None:
            kind = _chat_kind(item)
            if kind is not None:
                self._on_delivered(kind)
        self._force_put(item, size)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def force_put(self, item: Any) -> None:
        """Queue ``item`` whatever the limit (goodbyes and the writer's end marker)."""
        self._force_put(item, packet_size(item))

    def _force_put(self, item: Any, size: int) -> None:
        self.nbytes += size
        items = self._items
        if items is None:
            items = self._items = collections.deque()
        items.append(item)
        self._unfinished += 1
        self._wake_getter()

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        # Packets are not changed once queued, so their size is the same as
        # when they were put, without keeping it.
        size = packet_size(item)
        if self.writes_on_send and item is not None:
            unsent = self._unsent
            if unsent is None:
                unsent = self._unsent = collections.deque()
            unsent.append(size)
        else:
            self.nbytes -= size
        return item

    async def get(self) -> Any:
        while not self._items:
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    # Woken and cancelled in the same turn: pass the wake-up on.
                    self._wake_getter()
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners is not None:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished > 0:
            joiner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner

    def sent(self) -> None:
        """The oldest packet taken from the queue has been written to the transport."""
        unsent = self._unsent
        if unsent:
            self.nbytes -= unsent.popleft()
            if not unsent:
                self._unsent = None

    def discard(self) -> None:
        """Forget every queued packet (the connection is being dropped)."""
        with contextlib.suppress(asyncio.QueueEmpty, ValueError):
            while True:
                self.get_nowait()
                self.task_done()
        self._unsent = None
        self.nbytes = 0


def _chat_kind(item: Any) -> str | None:
    data = item.data
    # A Socket.IO EVENT for "/" is encoded as 2["name",...].
    if item.packet_type != eio_packet.MESSAGE or not isinstance(data, str):
        return None
    if not data.startswith('2["'):
        return None
    end = data.find('"', 3, 24)
    name = data[3:end] if end > 0 else ""
    return name if name in DELIVERED_KINDS else None


def _ping(socket: Any) -> None:
    """What python-engineio's ``_send_ping`` does once its sleep is over."""
    socket.chat_ping_task = None
    if not socket.closing and not socket.closed:
        socket.last_ping = time.time()
        # AsyncSocket.send would first check the ping timeout, which cannot
        # have passed with last_ping just set; the queue is unbounded.
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))


class _Body:
    """The already-read body of a polling POST, as python-engineio reads it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self, length: int = -1) -> bytes:
        return self._body


class GuardedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped base (python-engineio)
    """python-engineio's aiohttp WebSocket, screening every frame it hands on.

    It also leaves the TCP transport on the Engine.IO socket (``chat_transport``)
    so that the server can measure what is stuck in it and cut it.
    """

    sid: str | None = None
    queue: SendQueue | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        request = environ["aiohttp.request"]
        socket = getattr(self.handler, "__self__", None)
        if socket is not None:
            self.sid = socket.sid
            socket.chat_transport = request.transport
            if isinstance(socket.queue, SendQueue):
                self.queue = socket.queue
                self.queue.writes_on_send = True
        # aiohttp refuses a frame of exactly max_msg_size bytes; the contract
        # allows CHAT_MAX_PAYLOAD bytes and closes on one more. permessage-deflate
        # stays off, as in Node's socket.io: chat frames are small, and compressed
        # frames differ per connection, so a room broadcast could not share one
        # frame (fanout.py) and every browser would pay a compressor's memory.
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size + 1, compress=False
        )
        await self._sock.prepare(request)
        if socket is not None and socket.connected:
            # An upgrade: this request's environ is not the one python-socketio
            # keeps, and nothing reads it past this point (see GuardedSocketServer).
            environ.clear()
        self.environ = environ
        if socket is not None and getattr(self.handler, "__name__", None) == "_websocket_handler":
            await serve_websocket(socket, self)
        else:
            await self.handler(self)
        return self._sock

    async def send(self, message: str | bytes) -> None:
        await super().send(message)
        if self.queue is not None:
            self.queue.sent()

    async def wait(self) -> str:
        msg = await self._sock.receive()
        if msg.type is WSMsgType.TEXT:
            reason = screen_packet(msg.data)
            if reason is None:
                text: str = msg.data
                return text
        elif msg.type is WSMsgType.BINARY:
            reason = "binary"
        elif msg.type is WSMsgType.ERROR and isinstance(msg.data, WebSocketError):
            # aiohttp already closed the socket (1009 too big, 1007 bad UTF-8...).
            too_big = msg.data.code == WSCloseCode.MESSAGE_TOO_BIG
            reason = "too_large" if too_big else "malformed"
        else:
            raise OSError("websocket closed")
        server: GuardedEngineServer = self.server
        if self.sid is not None:
            await server.refuse(self.sid, reason)
        # python-engineio ends the connection on OSError, its normal way out.
        raise OSError(f"refused: {reason}")


async def serve_websocket(socket: Any, ws: GuardedWebSocket) -> None:
    """python-engineio's ``AsyncSocket._websocket_handler``, with fewer tasks per connection.

    The same steps in the same order (the upgrade probe, a writer task
    draining the queue, the reader loop, the same ways out), but its timeouts
    are ``asyncio.timeout`` scopes instead of ``asyncio.wait_for``, which
    wraps each wait in a task of its own: an idle connection keeps its
    handler and one writer task, not four tasks and their futures.
    """
    server = socket.server
    queue = socket.queue
    limit = server.ping_interval + server.ping_timeout

    async def receive() -> Any:
        async with asyncio.timeout(limit):
            data = await ws.wait()
        if data and len(data) > server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    if socket.connected:
        # The socket was already connected, so this is an upgrade.
        socket.upgrading = True  # hold packet sends during the upgrade
        try:
            pkt = eio_packet.Packet(encoded_packet=await receive())
        except OSError:
            return
        if pkt.packet_type != eio_packet.PING or pkt.data != "probe":
            socket.upgrading = False
            return
        await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the pending poll
        try:
            pkt = eio_packet.Packet(encoded_packet=await receive())
        except OSError:
            socket.upgrading = False
            return
        if pkt.packet_type != eio_packet.UPGRADE:
            socket.upgraded = False
            socket.upgrading = False
            return
        socket.upgraded = True
        socket.upgrading = False
    else:
        socket.connected = True
        socket.upgraded = True

    writer_task = asyncio.ensure_future(_write_queue(socket, ws, limit))
    while True:
        try:
            data = await receive()
        except BaseException:
            # A timeout, a closed socket, a refused frame, or the handler
            # being cancelled: python-engineio ends the connection on each.
            break
        if data is None:
            break  # connection closed by client
        try:
            await socket.receive(eio_packet.Packet(encoded_packet=data))
        except engineio.exceptions.UnknownPacketError:
            pass
        except engineio.exceptions.SocketIsClosedError:
            break
        except Exception:
            server.logger.exception("Unknown receive error")
    await queue.put(None)  # unlock the writer task so it can exit
    await writer_task
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _write_queue(socket: Any, ws: GuardedWebSocket, limit: float) -> None:
    """The writer task: python-engineio's, taking packets as ``AsyncSocket.poll`` does."""
    queue = socket.queue
    while True:
        try:
            async with asyncio.timeout(limit):
                first = await queue.get()
        except (TimeoutError, asyncio.CancelledError):
            break
        queue.task_done()
        if first is None:
            break  # the connection is closing
        packets = [first]
        while True:
            try:
                pkt = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)
                break
            packets.append(pkt)
        try:
            for pkt in packets:
                await ws.send(pkt.encode())
        except BaseException:
            break
        # Not kept while waiting for the next packet, which may be 25 s away.
        del first, pkt, packets
    await ws.close()


class GuardedEngineServer(engineio.AsyncServer):  # type: ignore[misc]  # untyped base (python-engineio)
    """An Engine.IO server with screened input and bounded output per connection.

    :param send_queue_bytes: outgoing bytes held for one connection beyond
        what its TCP socket accepted; past it the connection is dropped.
    :param metrics: where refusals and drops are counted.
    :param kwargs: python-engineio's own options.
    """

    #: python-engineio's table of transport drivers, set by its constructor.
    _async: dict[str, Any]

    def __init__(self, *, send_queue_bytes: int, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.send_queue_bytes = send_queue_bytes
        self.metrics = metrics
        self.draining = False
        self._delivered = {
            kind: metrics.messages_delivered.labels(kind) for kind in DELIVERED_KINDS
        }
        # A copy: the driver table is shared by every server of the process.
        self._async = {
            **self._async,
            "websocket": GuardedWebSocket,
            "translate_request": self._translate_request,
        }

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(target, "__name__", None) == "_send_ping" and not args and not kwargs:
            # python-engineio's ping is a task sleeping 25 s for every
            # connection; a timer does the same wait for a fraction of the memory.
            socket = target.__self__
            handle = asyncio.get_running_loop().call_later(self.ping_interval, _ping, socket)
            socket.chat_ping_task = handle
            return handle
        return super().start_background_task(target, *args, **kwargs)

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
        return SendQueue(self.send_queue_bytes, self._overflowed, self._count_delivery)

    def _count_delivery(self, kind: str) -> None:
        self._delivered[kind].inc()

    def _overflowed(self, queue: SendQueue) -> None:
        for sid, socket in self.sockets.items():
            if socket.queue is queue:
                asyncio.get_running_loop().create_task(self.drop(sid, "slow_consumer"))
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

    async def drop(self, sid: str, reason: str, *, goodbye: bool = False) -> None:
        """Close connection ``sid`` now, running the chat's disconnect handling.

        With ``goodbye`` the client first gets a Socket.IO DISCONNECT, which
        tells well-behaved clients not to reconnect; without it the TCP
        connection is cut at once and clients reconnect by themselves.
        """
        socket = self.sockets.get(sid)
        if socket is None or socket.closed or socket.closing:
            return
        self.metrics.disconnects.labels(reason).inc()
        if reason == "slow_consumer":
            log.warning("dropping connection sid=%s: slow consumer", sid)
        queue = socket.queue
        transport = getattr(socket, "chat_transport", None)
        if isinstance(queue, SendQueue):
            queue.discard()
            if goodbye:
                queue.force_put(eio_packet.Packet(eio_packet.MESSAGE, _GOODBYE))
        await socket.close(wait=False, abort=True, reason=self.reason.TRANSPORT_ERROR)
        if isinstance(queue, SendQueue):
            queue.force_put(None)  # ends the writer task or a pending long-poll
        self.sockets.pop(sid, None)
        if transport is not None:
            if goodbye:
                asyncio.get_running_loop().call_later(GOODBYE_GRACE, transport.abort)
            else:
                transport.abort()

    async def drop_all(self, reason: str) -> int:
        """Cut every connection (clients reconnect by themselves); returns how many."""
        sids = [sid for sid, socket in self.sockets.items() if not socket.closed]
        for sid in sids:
            await self.drop(sid, reason)
        return len(sids)

    # -- incoming ------------------------------------------------------------------

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        if self.draining and "sid" not in request.query:
            return web.Response(
                status=503,
                text="This server is restarting; connect again shortly.",
                headers={"Retry-After": "1"},
            )
        response: web.StreamResponse = await super().handle_request(request)
        return response

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
