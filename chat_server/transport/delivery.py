"""``core.ports.Delivery`` over python-socketio's rooms and its client manager."""

from __future__ import annotations

from typing import Any

import socketio

from chat_server.core.ports import Publication
from chat_server.transport.bus import ResilientRedisManager

__all__ = ["SocketDelivery"]


class SocketDelivery:
    """``service.Delivery`` over python-socketio rooms (and its Redis manager)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

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
