"""Changing a kept message: edits, deletions and reactions, and what each may do.

The rules here are the whole truth for the memory store; the Redis store runs
the same rules inside one Lua script (``stores/scripts.py``), and the store
tests hold both to the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chat_server.core.errors import ChatError

__all__ = [
    "MAX_REACTIONS",
    "Change",
    "apply_change",
    "refusal",
]

#: Distinct emoji one message may carry.
MAX_REACTIONS = 20

Op = Literal["edit", "delete", "react"]
Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One change a user asks for.

    :param op: ``edit``, ``delete`` or ``react``.
    :param actor: who asks.
    :param text: the new text (``edit``).
    :param emoji: the reaction (``react``).
    :param add: add (True) or remove (False) the actor's reaction (``react``).
    :param moderates: the actor may delete anyone's message here (room owner,
        moderator, admin); decided by the service before the store runs.
    """

    op: Op
    actor: str
    text: str = ""
    emoji: str = ""
    add: bool = True
    moderates: bool = False


def refusal(status: str) -> ChatError:
    """The error a store's refusal ``status`` stands for."""
    if status == "forbidden":
        return ChatError("forbidden", "Only the author may change this message.")
    if status == "too_many":
        return ChatError(
            "invalid",
            f"A message carries at most {MAX_REACTIONS} distinct reactions.",
            {"emoji": [f"At most {MAX_REACTIONS} distinct emoji a message."]},
        )
    return ChatError("not_found", "No such message is kept here.")


def apply_change(message: Record, change: Change, now_ms: int) -> Record | None:
    """``message`` as ``change`` leaves it (without a new ``rev``), or None if unchanged.

    Raises the ``refusal`` of a change that may not happen: a tombstone is
    ``not_found``, someone else's message ``forbidden``, a 21st emoji ``invalid``.
    """
    if message.get("deleted"):
        raise refusal("not_found")
    if change.op == "edit":
        if message["from"] != change.actor:
            raise refusal("forbidden")
        return {**message, "text": change.text, "edited_ts": now_ms}
    if change.op == "delete":
        if message["from"] != change.actor and not change.moderates:
            raise refusal("forbidden")
        kept = {k: v for k, v in message.items() if k not in ("reactions", "edited_ts")}
        return {**kept, "text": "", "deleted": True}
    return _react(message, change)


def _react(message: Record, change: Change) -> Record | None:
    reactions: dict[str, list[str]] = dict(message.get("reactions") or {})
    users = reactions.get(change.emoji, [])
    if (change.actor in users) == change.add:
        return None  # already as asked: adding and removing are idempotent
    if change.add:
        if change.emoji not in reactions and len(reactions) >= MAX_REACTIONS:
            raise refusal("too_many")
        reactions[change.emoji] = sorted([*users, change.actor])
    else:
        remaining = [user for user in users if user != change.actor]
        if remaining:
            reactions[change.emoji] = remaining
        else:
            del reactions[change.emoji]
    changed = {k: v for k, v in message.items() if k != "reactions"}
    return {**changed, "reactions": reactions} if reactions else changed
