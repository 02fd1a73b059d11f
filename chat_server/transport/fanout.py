"""Room broadcasts that encode once and write each recipient's WebSocket frame directly.

python-socketio delivers a broadcast by creating one task per recipient, which
puts the packet on that connection's queue and wakes its writer task, which
encodes the packet and builds a WebSocket frame again, for every recipient.
Here a broadcast is encoded into one Engine.IO packet and one WebSocket frame,
and that frame is handed straight to the TCP transport of every recipient whose
connection is *idle*:

- its transport is a WebSocket (not long-polling, not mid-upgrade); the
  server never negotiates permessage-deflate (transport.py), so its frames
  are the same for every connection;
- its send queue is empty and its writer task is parked waiting on it, so
  nothing it took from the queue is still unwritten;
- its TCP transport holds nothing unsent (a client that keeps up).

Every other recipient gets the packet through the ordinary queue, and once a
connection has anything queued, later broadcasts queue behind it; so each
connection receives its packets in the order they were emitted, whichever path
each took. Frames for one connection written in one loop turn are joined into
one ``write`` (one system call), flushed at the start of the next turn, before
any writer task woken meanwhile can write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from chat_server.transport.roomindex import RoomIndex
from chat_server.transport.sendqueue import DELIVERED_KINDS

__all__ = ["LocalManager", "broadcast", "websocket_frame"]


def websocket_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame, as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class _Corker:
    """Frames per transport written during one loop turn, joined and written at the next."""

    def __init__(self) -> None:
        self._pending: dict[Any, list[bytes]] = {}
        self._scheduled = False

    def write(self, transport: Any, frame: bytes) -> None:
        frames = self._pending.get(transport)
        if frames is not None:
            frames.append(frame)
            return
        self._pending[transport] = [frame]
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for transport, frames in pending.items():
            if not transport.is_closing():
                transport.write(frames[0] if len(frames) == 1 else b"".join(frames))


_corker = _Corker()


def _direct_transport(socket: Any) -> Any:
    """The TCP transport to write ``socket``'s next frame to now, or None to queue it."""
    transport = getattr(socket, "chat_transport", None)
    if (
        transport is None
        or not socket.upgraded
        or socket.upgrading
        or socket.closing
        or socket.closed
    ):
        return None
    # The writer parks in queue.get() only after writing all it took; a queued
    # packet or a writer busy elsewhere (awaiting a drain) means "queue behind".
    if not socket.queue.parked():
        return None
    if transport.is_closing() or transport.get_write_buffer_size():
        return None
    return transport


async def broadcast(
    manager: socketio.AsyncManager,
    event: str,
    data: Any,
    namespace: str | None,
    room: str | list[str] | None,
    skip_sid: str | list[str] | None,
) -> None:
    """Deliver ``event`` to this process's participants of ``room``, frame built once."""
    namespace = namespace or "/"
    if namespace not in manager.rooms:
        return
    if isinstance(data, tuple):
        args = list(data)
    elif data is not None:
        args = [data]
    else:
        args = []
    server = manager.server
    encoded = server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args])
    text = encoded.encode()
    if isinstance(text, list):  # binary attachments: not this chat's business
        await socketio.AsyncManager.emit(
            manager, event, data, namespace, room=room, skip_sid=skip_sid
        )
        return
    skip: Iterable[str | None] = skip_sid if isinstance(skip_sid, list) else (skip_sid,)
    sockets = server.eio.sockets
    eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, text)
    frame: bytes | None = None
    direct = 0
    corker = _corker
    # With the direct path switched off (Settings.speedups_off), every
    # recipient takes the queue; the frame is still encoded once.
    direct_ok = server.direct_fanout
    for sid, eio_sid in manager.get_participants(namespace, room):
        if sid in skip:
            continue
        socket = sockets.get(eio_sid)
        if socket is None or socket.closed:
            continue  # python-engineio drops a packet for a closed socket too
        transport = _direct_transport(socket) if direct_ok else None
        if transport is None:
            # What AsyncSocket.send does, minus its ping-timeout check, which
            # python-engineio's own service task makes for every socket anyway.
            socket.queue.put_nowait(eio_pkt)
            continue
        if frame is None:
            frame = websocket_frame(eio_pkt.encode().encode())
        corker.write(transport, frame)
        direct += 1
    if direct and event in DELIVERED_KINDS:
        # The queue counts what it carries; count what went around it.
        server.metrics.messages_delivered.labels(event).inc(direct)


class LocalManager(RoomIndex):
    """The client manager of a process without Redis, broadcasting through ``broadcast``."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None,
        room: str | list[str] | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        await broadcast(self, event, data, namespace, to or room, skip_sid)
