"""The WebSocket transport: python-engineio's aiohttp driver, screened and lighter.

``GuardedWebSocket`` screens every frame before python-engineio decodes it, and
leaves the TCP transport on the Engine.IO socket so that the server can
measure what is stuck in it, cut it, and (fanout.py) write shared broadcast
frames straight to it. ``serve_websocket`` is python-engineio's connection
loop with fewer tasks per connection (see compat.py for the upstream it matches).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import engineio.exceptions
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_websocket import WebSocketError
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from chat_server.transport.fanout import websocket_frame
from chat_server.transport.screening import screen_packet
from chat_server.transport.sendqueue import SendQueue

__all__ = ["GuardedWebSocket", "Refuser", "serve_websocket"]


class Refuser(Protocol):
    """What a WebSocket needs of its Engine.IO server: a way to refuse input, and
    to serve the connection once python-engineio's request handling has returned."""

    async def refuse(self, sid: str, reason: str) -> None:
        """Count a refused input and close connection ``sid``."""
        ...

    def serve_later(self, request: web.Request, ws: GuardedWebSocket) -> None:
        """Serve ``ws`` (with ``serve_websocket``) once ``request``'s handling returns."""
        ...


class GuardedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]  # untyped base (python-engineio)
    """python-engineio's aiohttp WebSocket, screening every frame it hands on.

    It also leaves the TCP transport on the Engine.IO socket (``chat_transport``)
    so that the server can measure what is stuck in it and cut it, and the
    broadcast path can write shared frames to it (fanout.py).
    """

    sid: str | None = None
    queue: SendQueue | None = None
    #: The Engine.IO socket this WebSocket carries, once upgraded.
    socket: Any = None

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
            # keeps, and nothing reads it past this point (see ChatSocketServer).
            environ.clear()
        self.environ = environ
        if socket is not None and getattr(self.handler, "__name__", None) == "_websocket_handler":
            # python-engineio would serve it from within its request handling,
            # so its frames (handle_request, _handle_connect, handle_get_request,
            # _upgrade_websocket, this one) and what they hold (the parsed query,
            # the OPEN packet, the environ) would wait as long as the connection
            # stays open. The server serves it once they have returned.
            self.socket = socket
            server: Refuser = self.server
            server.serve_later(request, self)
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
        server: Refuser = self.server
        if self.sid is not None:
            await server.refuse(self.sid, reason)
        # python-engineio ends the connection on OSError, its normal way out.
        raise OSError(f"refused: {reason}")


async def serve_websocket(socket: Any, ws: GuardedWebSocket) -> None:
    """python-engineio's ``AsyncSocket._websocket_handler``, with fewer tasks per connection.

    The same steps in the same order (the upgrade probe, a writer task
    draining the queue, the reader loop, the same ways out), with fewer waits
    held per connection. python-engineio wraps each wait in ``wait_for``
    (a task of its own) with a timeout of ``pingInterval + pingTimeout``; an
    idle connection kept four tasks and their futures. Here the upgrade
    probe's two reads keep that timeout, as an ``asyncio.timeout`` scope,
    while the reader loop and the writer wait with none: the server's
    heartbeat (``engine.py``) closes a connection whose PONG is not back
    ``pingTimeout`` after a PING, which is when python-engineio's timeouts
    would have fired for a silent client (a PING goes out every
    ``pingInterval``), and closing it ends both waits. An idle connection
    keeps its handler, one writer task and the heartbeat's timer, and
    re-arms no timer per packet.
    """
    server = socket.server
    queue = socket.queue
    limit = server.ping_interval + server.ping_timeout
    max_size = server.max_http_buffer_size

    if socket.connected:
        # The socket was already connected, so this is an upgrade.
        socket.upgrading = True  # hold packet sends during the upgrade
        try:
            pkt = eio_packet.Packet(encoded_packet=await _probe(ws, limit, max_size))
        except OSError:
            return
        if pkt.packet_type != eio_packet.PING or pkt.data != "probe":
            socket.upgrading = False
            return
        await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the pending poll
        try:
            pkt = eio_packet.Packet(encoded_packet=await _probe(ws, limit, max_size))
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

    writer_task = asyncio.ensure_future(_write_queue(socket, ws))
    while True:
        try:
            data = await ws.wait()
        except BaseException:
            # A closed socket (the heartbeat's deadline among the ways to it),
            # a refused frame, or the handler being cancelled: python-engineio
            # ends the connection on each.
            break
        if data is None:
            break  # connection closed by client
        if len(data) > max_size:
            break  # python-engineio's ValueError, caught the same way
        try:
            await socket.receive(eio_packet.Packet(encoded_packet=data))
        except engineio.exceptions.UnknownPacketError:
            pass
        except engineio.exceptions.SocketIsClosedError:
            break
        except Exception:
            server.logger.exception("Unknown receive error")
        if socket.closed:
            # The client sent CLOSE (python-engineio would keep reading until
            # the heartbeat gave up, holding the connection 45 s longer).
            break
    await queue.put(None)  # unlock the writer task so it can exit
    await writer_task
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _probe(ws: GuardedWebSocket, limit: float, max_size: int) -> str:
    """One read of the upgrade probe, within python-engineio's timeout."""
    async with asyncio.timeout(limit):
        data = await ws.wait()
    if data and len(data) > max_size:
        raise ValueError("packet is too large")
    return data


def _write_direct(socket: Any, ws: GuardedWebSocket, packets: list[Any]) -> bool:
    """Write ``packets`` as one ``write`` of WebSocket frames, if the transport is idle.

    aiohttp's writer costs a frame build, a lock and a flow-control check per
    packet, and one system call each; a handshake's CONNECT answer and
    ``welcome``, or an ack and what followed it, are usually taken together.
    Only with nothing unsent in the TCP transport (a client that keeps up):
    otherwise aiohttp's writer, which waits for the transport to drain, does
    it. The frames are the ones the broadcast path writes (fanout.py); the
    server never negotiates compression, so they are what aiohttp would send.
    """
    transport = getattr(socket, "chat_transport", None)
    if transport is None or transport.is_closing() or transport.get_write_buffer_size():
        return False
    if ws._sock.closed:
        return False  # aiohttp sent or answered a close frame: nothing may follow it
    encoded = [pkt.encode() for pkt in packets]
    if not all(isinstance(text, str) for text in encoded):
        return False  # binary: not this chat's business, but aiohttp knows how
    frames = [websocket_frame(text.encode()) for text in encoded]
    transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
    if ws.queue is not None:
        for _ in packets:
            ws.queue.sent()
    return True


async def _write_queue(socket: Any, ws: GuardedWebSocket) -> None:
    """The writer task: python-engineio's, taking packets as ``AsyncSocket.poll`` does.

    It waits for the next packet with no timeout of its own: a PING is
    queued every ``pingInterval``, and a connection that stops answering is
    closed by the heartbeat, which queues the ``None`` that ends this loop.
    """
    queue = socket.queue
    while True:
        try:
            first = await queue.get()
        except asyncio.CancelledError:
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
            if not _write_direct(socket, ws, packets):
                for pkt in packets:
                    await ws.send(pkt.encode())
        except BaseException:
            break
        # Not kept while waiting for the next packet, which may be 25 s away
        # (pkt is unbound when the direct write took the batch).
        first = pkt = None
        del packets
    await ws.close()
