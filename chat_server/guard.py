"""Socket.IO packet guards: safe decoding, per-connection rate limits, input metrics.

``GuardedSocketServer`` sits between python-socketio's packet dispatch and the
chat's handlers. Every packet a client sends is decoded here once, inside a
``try``: one that does not decode, announces binary attachments or repeats the
namespace handshake closes its connection instead of raising inside
python-socketio. Every EVENT and ACK (and any handshake beyond the first)
spends a token of the connection's bucket; an event refused for want of tokens is answered
``rate_limited`` with ``retry_after``, and a connection that keeps flooding
is disconnected.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import socketio
from socketio import packet as sio_packet

from .errors import ChatError
from .metrics import Metrics
from .ratelimit import ConnectionLimiter
from .transport import GuardedEngineServer

__all__ = ["GuardedSocketServer"]

log = logging.getLogger(__name__)

_RATE_LIMITED_MESSAGE = "Too many events; wait retry_after seconds before sending again."


class GuardedSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # untyped base (python-socketio)
    """A python-socketio server that decodes defensively and rate-limits each connection.

    :param rate_burst: events a connection may send at once.
    :param rate_per_second: events per second it may keep sending.
    :param send_queue_bytes: outgoing bytes held per connection before it is
        dropped as a slow consumer (see ``transport.GuardedEngineServer``).
    :param metrics: where events, refusals and rate-limit hits are counted.
    :param kwargs: python-socketio's and python-engineio's own options.
    """

    eio: GuardedEngineServer

    def __init__(
        self,
        *,
        rate_burst: int,
        rate_per_second: float,
        send_queue_bytes: int,
        metrics: Metrics,
        **kwargs: Any,
    ) -> None:
        # Set before the base constructor, which builds the Engine.IO server.
        self.metrics = metrics
        self._send_queue_bytes = send_queue_bytes
        self._rate = (rate_burst, rate_per_second)
        self._limiters: dict[str, ConnectionLimiter] = {}
        super().__init__(**kwargs)

    def _engineio_server_class(self) -> Any:
        return functools.partial(
            GuardedEngineServer, send_queue_bytes=self._send_queue_bytes, metrics=self.metrics
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
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
            return
        if kind == sio_packet.CONNECT:
            await self._connect_packet(eio_sid, pkt)
            return
        if kind not in (sio_packet.EVENT, sio_packet.ACK):
            await self.eio.refuse(eio_sid, "malformed")
            return
        if not await self._within_rate(eio_sid, pkt):
            return
        if kind == sio_packet.EVENT:
            event = pkt.data[0] if isinstance(pkt.data, list) and pkt.data else None
            self.metrics.event_received(event)
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
        if namespace != "/" and not await self._within_rate(eio_sid, pkt):
            return
        self.metrics.event_received("connect")
        await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        if namespace == "/" and self.manager.sid_from_eio_sid(eio_sid, "/") is not None:
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

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        try:
            result = await super()._trigger_event(event, namespace, *args)
        except socketio.exceptions.ConnectionRefusedError as exc:
            data = exc.error_args.get("data") if isinstance(exc.error_args, dict) else None
            code = data.get("code") if isinstance(data, dict) else None
            self.metrics.rejected_inputs.labels(code if isinstance(code, str) else "refused").inc()
            raise
        if isinstance(result, dict) and result.get("ok") is False:
            error = result.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            if isinstance(code, str):
                self.metrics.rejected_inputs.labels(code).inc()
        return result

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._limiters.pop(eio_sid, None)
        self.eio.forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)
