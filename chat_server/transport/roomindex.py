"""Which rooms each connection is in, so that a disconnect does not scan every room.

python-socketio's ``BaseManager.basic_disconnect`` finds a leaving connection's
rooms by copying the namespace's table of rooms and testing each one; every
connection has a room of its own (its sid) and here one more (its user's
channel), so a process holding N connections scans about 2N rooms per
disconnect, and N clients leaving at once (a restart, a network blip) cost
N² membership tests: at 5,000 connections that was most of the server's time
in a reconnect storm. ``RoomIndex`` keeps each connection's rooms beside
python-socketio's table, updated wherever python-socketio enters or leaves a
room, and leaves exactly those rooms on disconnect.
"""

from __future__ import annotations

from typing import Any

import socketio

__all__ = ["RoomIndex"]


class RoomIndex(socketio.AsyncManager):  # type: ignore[misc]  # untyped base (python-socketio)
    """A python-socketio manager that knows each connection's rooms (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (namespace, sid) -> the rooms it is in, the sid's own and ``None`` included.
        self.rooms_of: dict[tuple[str, str], set[str | None]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self.rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """``BaseManager.basic_disconnect``, leaving the rooms of the index instead of all."""
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.rooms_of.pop((namespace, sid), None)
        if sid in self.callbacks:
            del self.callbacks[sid]
        # python-socketio 5.14 has no pending_connect (5.18 does).
        tables: tuple[dict[str, list[str]], ...] = (
            getattr(self, "pending_connect", {}),
            self.pending_disconnect,
        )
        for table in tables:
            pending = table.get(namespace)
            if pending is not None and sid in pending:
                pending.remove(sid)
                if not pending:
                    del table[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        """The rooms ``sid`` is in (its own included), from the index."""
        return [r for r in self.rooms_of.get((namespace, sid), ()) if r is not None]
