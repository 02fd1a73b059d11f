"""Message ids: fixed-width strings that sort in the order messages were stored.

An id is ``<ms>-<seq>``: the server's clock in milliseconds, never going back
within a conversation, and a counter shared by every conversation of the store,
so ids are unique across rooms and processes, not only within one room.
"""

from __future__ import annotations

import re

__all__ = ["ID_PATTERN", "format_id", "parse_id"]

MS_DIGITS = 15
SEQ_DIGITS = 16
ID_PATTERN = re.compile(rf"([0-9]{{{MS_DIGITS}}})-([0-9]{{{SEQ_DIGITS}}})\Z")


def format_id(ms: int, seq: int) -> str:
    """The wire form of the id made of ``ms`` and ``seq``."""
    return f"{ms:0{MS_DIGITS}d}-{seq:0{SEQ_DIGITS}d}"


def parse_id(message_id: str) -> tuple[int, int]:
    """``(ms, seq)`` of a wire id; ``ValueError`` when it is not one."""
    match = ID_PATTERN.match(message_id)
    if match is None:
        raise ValueError(f"not a message id: {message_id!r}")
    return int(match[1]), int(match[2])
