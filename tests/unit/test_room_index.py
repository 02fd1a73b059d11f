"""RoomIndex: python-socketio's room table and each connection's rooms stay in step."""

from __future__ import annotations

from chat_server.transport.roomindex import RoomIndex

NS = "/"


def _connected(manager: RoomIndex, eio_sid: str) -> str:
    """A connection as ``BaseManager.pre_connect`` registers one: in rooms None and its own."""
    sid = f"s-{eio_sid}"
    manager.basic_enter_room(sid, NS, None, eio_sid=eio_sid)
    manager.basic_enter_room(sid, NS, sid, eio_sid=eio_sid)
    return sid


def test_disconnect_leaves_exactly_the_rooms_of_that_connection() -> None:
    manager = RoomIndex()
    a, b = _connected(manager, "ea"), _connected(manager, "eb")
    for sid in (a, b):
        manager.basic_enter_room(sid, NS, "lobby")
    manager.basic_enter_room(a, NS, "only-a")
    manager.basic_disconnect(a, NS)
    assert list(manager.get_participants(NS, "lobby")) == [(b, "eb")]
    assert "only-a" not in manager.rooms[NS]
    assert a not in manager.rooms[NS] and manager.sid_from_eio_sid("ea", NS) is None
    assert manager.sid_from_eio_sid("eb", NS) == b


def test_get_rooms_names_the_rooms_entered_and_not_those_left() -> None:
    manager = RoomIndex()
    a = _connected(manager, "ea")
    manager.basic_enter_room(a, NS, "one")
    manager.basic_enter_room(a, NS, "two")
    manager.basic_leave_room(a, NS, "one")
    assert sorted(manager.get_rooms(a, NS)) == sorted([a, "two"])


def test_closing_a_room_takes_it_out_of_every_members_rooms() -> None:
    manager = RoomIndex()
    a, b = _connected(manager, "ea"), _connected(manager, "eb")
    for sid in (a, b):
        manager.basic_enter_room(sid, NS, "doomed")
    manager.basic_close_room("doomed", NS)
    assert manager.get_rooms(a, NS) == [a] and manager.get_rooms(b, NS) == [b]


def test_the_index_forgets_a_connection_once_it_has_disconnected() -> None:
    manager = RoomIndex()
    a = _connected(manager, "ea")
    manager.basic_enter_room(a, NS, "lobby")
    manager.basic_disconnect(a, NS)
    assert manager.rooms_of == {}
