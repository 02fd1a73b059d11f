"""``core.ports.Delivery`` over python-socketio's rooms and its client manager."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio import packet as sio_packet

from chat_server.core.names import user_channel
from chat_server.core.ports import Publication
from chat_server.transport.bus import ResilientRedisManager

#: The event a connection closed by an administrator gets just before its
#: Socket.IO DISCONNECT, saying why (``reason``, ``message``, ``ban_seconds``).
REMOVED_EVENT = "removed"

__all__ = ["SocketDelivery"]


class SocketDelivery:
    """``service.Delivery`` over python-socketio rooms (and its Redis manager)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        #: What takes a user's local connections out of a room (the service's
        #: ``evict_local``), for evictions other processes ask for.
        self.on_evict: Callable[[str, str, dict[str, Any]], Awaitable[None]] | None = None
        manager = sio.manager
        if isinstance(manager, ResilientRedisManager):
            manager.on_control = self._control

    async def disconnect_user(self, user: str, notice: dict[str, Any]) -> int:
        closed = await self.disconnect_local(user, notice)
        manager = self.sio.manager
        if isinstance(manager, ResilientRedisManager):
            await manager.publish_control(
                {"action": "disconnect_user", "user": user, "notice": notice}
            )
        return closed

    async def disconnect_local(self, user: str, notice: dict[str, Any]) -> int:
        """Close this process's connections of ``user``, each told ``notice`` first.

        A server-side Socket.IO DISCONNECT, so that clients do not reconnect
        by themselves (into a ban); the transport is cut a moment later.
        """
        participants = list(self.sio.manager.get_participants("/", user_channel(user)))
        farewell = self.sio.packet_class(
            sio_packet.EVENT, namespace="/", data=[REMOVED_EVENT, notice]
        ).encode()
        for _, eio_sid in participants:
            await self.sio.eio.drop(
                eio_sid,
                "removed",
                goodbye=True,
                reason=self.sio.reason.SERVER_DISCONNECT,
                farewell=farewell,
            )
        return len(participants)

    async def _control(self, message: dict[str, Any]) -> None:
        """A control message another process published on the bus."""
        user, notice = message.get("user"), message.get("notice")
        if message.get("action") == "disconnect_user" and isinstance(user, str):
            await self.disconnect_local(user, notice if isinstance(notice, dict) else {})
        room = message.get("room")
        if (
            message.get("action") == "evict"
            and isinstance(user, str)
            and isinstance(room, str)
            and isinstance(notice, dict)
            and self.on_evict is not None
        ):
            await self.on_evict(room, user, notice)

    async def evict(self, room: str, user: str, notice: dict[str, Any]) -> None:
        manager = self.sio.manager
        if isinstance(manager, ResilientRedisManager):
            await manager.publish_control(
                {"action": "evict", "room": room, "user": user, "notice": notice}
            )

    async def enter(self, sid: str, channel: str) -> None:
        await self.sio.enter_room(sid, channel)

    async def leave(self, sid: str, channel: str) -> None:
        await self.sio.leave_room(sid, channel)

    async def emit(
        self,
        event: str,
        data: dict[str, Any],
        *,
        to: str | list[str] | None = None,
        skip_sid: str | None = None,
    ) -> None:
        await self.sio.emit(event, data, to=to, skip_sid=skip_sid)

    def publication(self, event: str, to: str | list[str]) -> Publication | None:
        manager = self.sio.manager
        if isinstance(manager, ResilientRedisManager):
            return manager.publication(event, to)
        return None
