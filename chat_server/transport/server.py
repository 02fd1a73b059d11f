"""The chat's Socket.IO server: the one class every inbound packet goes through.

``ChatSocketServer`` sits between python-socketio's packet dispatch and the
chat's handlers. Every packet a client sends is decoded here once, inside a
``try``: one that does not decode, announces binary attachments or repeats the
namespace handshake closes its connection instead of raising inside
python-socketio. Every EVENT and ACK (and any handshake beyond the first)
spends a token of the connection's bucket; an event refused for want of tokens is answered
``rate_limited`` with ``retry_after``, and a connection that keeps flooding
is disconnected. Event names python-socketio reserves for itself
(``connect``, ``disconnect``, ``*``) and names that are not strings never reach
a handler, and ``on_connected`` runs once the client has been told it is
connected, the first moment an emit to it is sure to arrive after the handshake.

Every private name of python-socketio used here is listed in ``compat.py``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio import packet as sio_packet

from chat_server.core.errors import ChatError
from chat_server.core.metrics import Metrics
from chat_server.core.ratelimit import ConnectionLimiter
from chat_server.transport.engine import GuardedEngineServer

__all__ = ["ChatSocketServer", "TextPacket"]

log = logging.getLogger(__name__)

NAMESPACE = "/"
_RATE_LIMITED_MESSAGE = "Too many events; wait retry_after seconds before sending again."


class TextPacket(sio_packet.Packet):  # type: ignore[misc]  # untyped base (python-socketio)
    """python-socketio's packet, never binary: the chat sends JSON only.

    Building a packet otherwise walks the whole payload looking for bytes
    (every message of a join answer's history, every member), for every ack
    and broadcast; binary packets that arrive are refused before this matters.
    ``uses_binary_events`` is python-socketio's own switch (its MessagePack
    packet turns it off too).
    """

    uses_binary_events = False


class ChatSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped base (python-socketio)
    """A python-socketio server that decodes defensively and rate-limits each connection.

    :param rate_burst: events a connection may send at once.
    :param rate_per_second: events per second it may keep sending.
    :param send_queue_bytes: outgoing bytes held per connection before it is
        dropped as a slow consumer (see ``transport.GuardedEngineServer``).
    :param metrics: where events, refusals and rate-limit hits are counted.
    :param direct_fanout: write broadcasts straight to idle WebSockets (fanout.py).
    :param connect_timeout: seconds a connection may take to send its CONNECT.
    :param handshake_limits: ``max_connections``, ``connect_limiter`` and
        ``trusted_proxies`` for the Engine.IO server (see ``GuardedEngineServer``).
    :param kwargs: python-socketio's and python-engineio's own options.
    """

    eio: GuardedEngineServer
    #: The Socket.IO packet class (``TextPacket`` unless a serializer was given).
    packet_class: Any
    #: Called with the sid of each connection once its CONNECT reply is sent.
    on_connected: Callable[[str], Awaitable[None]] | None = None
    #: The ack of an event no handler may see (reserved or non-string name).
    on_unroutable: Callable[[], dict[str, Any]] | None = None

    def __init__(
        self,
        *,
        rate_burst: int,
        rate_per_second: float,
        send_queue_bytes: int,
        metrics: Metrics,
        direct_fanout: bool = True,
        connect_timeout: float = 45.0,
        handshake_limits: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Set before the base constructor, which builds the Engine.IO server.
        self.metrics = metrics
        self.direct_fanout = direct_fanout
        self.connect_timeout = connect_timeout
        self._connect_deadlines: dict[str, asyncio.TimerHandle] = {}
        self._send_queue_bytes = send_queue_bytes
        self._handshake_limits = handshake_limits or {}
        self._rate = (rate_burst, rate_per_second)
        self._limiters: dict[str, ConnectionLimiter] = {}
        super().__init__(**kwargs)
        if self.packet_class is sio_packet.Packet:
            self.packet_class = TextPacket

    def _engineio_server_class(self) -> Any:
        return functools.partial(
            GuardedEngineServer,
            send_queue_bytes=self._send_queue_bytes,
            metrics=self.metrics,
            **self._handshake_limits,
        )

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self.environ:
            # Already dropped: its reader may still hand over what was in flight.
            return
        if not isinstance(data, str):
            # Binary frames are stopped by the transport; this is the last line.
            await self.eio.refuse(eio_sid, "binary")
            return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, TypeError, RecursionError):
            # Bad JSON, an over-long ack id, an absurd attachment count, or
            # nesting deeper than the decoder goes.
            await self.eio.refuse(eio_sid, "malformed")
            return
        kind = pkt.packet_type
        if kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            await self.eio.refuse(eio_sid, "binary")
            return
        if kind == sio_packet.DISCONNECT:
            if self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or NAMESPACE) is None:
                await self.eio.refuse(eio_sid, "malformed")  # DISCONNECT before CONNECT
                return
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
            return
        if kind == sio_packet.CONNECT:
            await self._connect_packet(eio_sid, pkt)
            return
        if kind not in (sio_packet.EVENT, sio_packet.ACK) or not _valid_payload(pkt):
            # Socket.IO v5: an EVENT's payload is a non-empty array, an ACK's an
            # array; a server MUST close the connection on anything else.
            await self.eio.refuse(eio_sid, "malformed")
            return
        if self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or NAMESPACE) is None:
            # An EVENT or ACK before CONNECT on its namespace: a protocol error.
            await self.eio.refuse(eio_sid, "malformed")
            return
        if not await self._within_rate(eio_sid, pkt):
            return
        if kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        else:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)

    async def _connect_packet(self, eio_sid: str, pkt: Any) -> None:
        namespace = pkt.namespace or "/"
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
            # A second handshake on a connected namespace would register a
            # second session for one connection, which nothing would clean up.
            await self.eio.refuse(eio_sid, "malformed")
            return
        # The handshake every client makes is free; knocking on namespaces
        # that do not exist (each answered with an error) is not.
        if namespace != NAMESPACE and not await self._within_rate(eio_sid, pkt):
            return
        if namespace != NAMESPACE:
            # python-socketio answers with a bare string; protocol v5 (and the
            # official clients, which read error.message) want an object.
            error = {"message": "Invalid namespace"}
            await self._send_packet(
                eio_sid, self.packet_class(sio_packet.CONNECT_ERROR, error, namespace=namespace)
            )
            return
        await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        if self.manager.sid_from_eio_sid(eio_sid, NAMESPACE) is not None:
            self._cancel_connect_deadline(eio_sid)
            # python-engineio's copy of the handshake request as a WSGI
            # environ (about 1 KiB) is kept for the connection's lifetime, by
            # python-socketio and by the frames serving a WebSocket; once
            # the client is authenticated nothing reads it again. Cleared in
            # place, as those frames hold the same dict.
            environ = self.environ.get(eio_sid)
            if environ is not None:
                environ.clear()

    async def _within_rate(self, eio_sid: str, pkt: Any) -> bool:
        """Spend a token for ``pkt``; answer or disconnect when there is none."""
        limiter = self._limiters.get(eio_sid)
        if limiter is None:
            limiter = self._limiters[eio_sid] = ConnectionLimiter(*self._rate)
        decision = limiter.check()
        if decision.allowed:
            return True
        self.metrics.rate_limited.labels("socket").inc()
        self.metrics.rejected_inputs.labels("rate_limited").inc()
        if decision.disconnect:
            log.warning("disconnecting sid=%s: flooding past its rate limit", eio_sid)
            await self.eio.drop(eio_sid, "flood", goodbye=True)
            return False
        if pkt.packet_type == sio_packet.EVENT and pkt.id is not None:
            error = ChatError(
                "rate_limited", _RATE_LIMITED_MESSAGE, retry_after=decision.retry_after
            )
            ack = self.packet_class(
                sio_packet.ACK, namespace=pkt.namespace, id=pkt.id, data=[error.to_reply()]
            )
            await self._send_packet(eio_sid, ack)
        return False

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: Any
    ) -> None:
        if (
            isinstance(data, list)
            and data
            and isinstance(data[0], str)
            and data[0] not in self.reserved_events
            and data[0] != "*"
        ):
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        if id is not None and self.on_unroutable is not None:
            reply = self.on_unroutable()
            ack = self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=[reply])
            await self._send_packet(eio_sid, ack)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace) and self.on_connected:
            await self.on_connected(sid)

    async def _handle_eio_connect(self, eio_sid: str, environ: Any) -> Any:
        accepted = await super()._handle_eio_connect(eio_sid, environ)
        # Socket.IO's connectTimeout: an Engine.IO session that never joins
        # the namespace would otherwise hold its memory until the heartbeat ends it.
        loop = asyncio.get_running_loop()
        self._connect_deadlines[eio_sid] = loop.call_later(
            self.connect_timeout, self._connect_expired, eio_sid
        )
        return accepted

    def _connect_expired(self, eio_sid: str) -> None:
        self._connect_deadlines.pop(eio_sid, None)
        if self.manager.sid_from_eio_sid(eio_sid, NAMESPACE) is None:
            self.eio.spawn(self.eio.drop(eio_sid, "connect_timeout"))

    def _cancel_connect_deadline(self, eio_sid: str) -> None:
        handle = self._connect_deadlines.pop(eio_sid, None)
        if handle is not None:
            handle.cancel()

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._cancel_connect_deadline(eio_sid)
        self._limiters.pop(eio_sid, None)
        self.eio.forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)


def _valid_payload(pkt: Any) -> bool:
    """Whether an EVENT's payload is a non-empty array, or an ACK's an array."""
    data = pkt.data
    if pkt.packet_type == sio_packet.EVENT:
        return isinstance(data, list) and bool(data)
    return isinstance(data, list)
