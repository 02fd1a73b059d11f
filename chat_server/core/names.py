"""How the chat names its transport groups and conversations.

A room and a user each have a transport group (the Socket.IO room their
connections sit in, and the bus channel it maps to: ``transport/routing.py``);
a room and a private conversation each have a history key. The service, the
bus's gap filler and the catch-up reader all name them the same way, from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Conversation", "conversation_key", "room_channel", "user_channel"]


def room_channel(room: str) -> str:
    """The transport group of a chat room (room names never contain ':')."""
    return f"room:{room}"


def user_channel(user: str) -> str:
    """The transport group holding every connection of one user."""
    return f"user:{user}"


def conversation_key(a: str, b: str) -> str:
    """The history key of the private conversation between two users."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


@dataclass(frozen=True, slots=True)
class Conversation:
    """A room or a private conversation, as one user addresses it.

    :param key: its history key.
    :param to: the channels that hear its ``message_updated``.
    :param where: how its events name it: ``{"room": r}`` or ``{"with": other}``.
    """

    key: str
    to: str | list[str]
    where: dict[str, str]

    @classmethod
    def room(cls, room: str) -> Conversation:
        """The room ``room``."""
        return cls(room_channel(room), room_channel(room), {"room": room})

    @classmethod
    def private(cls, user: str, other: str) -> Conversation:
        """``user``'s private conversation with ``other``."""
        return cls(
            conversation_key(user, other),
            [user_channel(other), user_channel(user)],
            {"with": other},
        )
