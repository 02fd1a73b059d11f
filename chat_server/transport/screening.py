"""Screening of what clients send, before python-engineio or python-socketio decode it."""

from __future__ import annotations

__all__ = ["screen_packet"]

#: Engine.IO packet types a client may send, as their one-character codes.
_EIO_TYPES = frozenset("0123456")


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
