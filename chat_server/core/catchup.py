"""What a process's connections missed while its link to the others was down.

While a process's Redis subscription is down, messages the processes store
are published without reaching it. When it is back, the clients could fill
the gap themselves (``join {since}``), but only if nothing newer reached them
first: a client resumes from the largest id it has seen, and messages heard
on the new subscription are newer than the gap. So the process fills the gap
itself, from history, before it delivers anything the new subscription
brought (docs/delivery.md). This module says which conversations to read and
from where; the transport decides when, and delivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chat_server.core.ids import parse_id
from chat_server.core.names import conversation_key, room_channel, user_channel
from chat_server.core.ports import Directory, History, Record

__all__ = ["Missed", "MissedFinder", "finder", "history_key", "missed_messages", "position"]

#: Conversations of one user looked at, the most recently active first.
MAX_PARTNERS = 100
#: History reads in flight at once (the pool is shared with every handler).
CONCURRENCY = 16
#: Slack for a message's ``ts`` (its directory entry) trailing the id's clock.
SLACK_MS = 1000


@dataclass(frozen=True, slots=True)
class Missed:
    """One message to deliver again: its event, its targets, and the message."""

    key: str
    event: str
    to: str | list[str]
    message: Record


def history_key(event: str, data: Any) -> str | None:
    """The conversation a delivered event's message belongs to; None for other events."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    if event in ("message", "message_updated") and isinstance(data.get("room"), str):
        return room_channel(data["room"])
    sender, to = data.get("from"), data.get("to")
    if event in ("private_message", "message_updated") and isinstance(sender, str):
        return conversation_key(sender, to) if isinstance(to, str) else None
    return None


def position(message: Record) -> str:
    """Where a delivered message or change stands in its conversation's sequence.

    A message stands at its ``rev``, which is its id until it changes; ids
    and revs share one sequence, so one conversation's deliveries are in
    order when their positions are.
    """
    rev = message.get("rev")
    return rev if isinstance(rev, str) else str(message["id"])


async def missed_messages(
    history: History,
    directory: Directory,
    *,
    rooms: Iterable[str],
    users: Iterable[str],
    heard: Mapping[str, str],
    watermark: str,
) -> list[Missed]:
    """Messages of ``rooms`` and of ``users``' conversations stored after what was heard.

    ``heard`` maps a conversation to the last id heard of it; a conversation
    not in it is read after ``watermark``, the largest id heard of any (ids
    share one clock and counter, so nothing heard is newer). Each
    conversation's messages and changes come in ``position`` order.
    """
    limit = asyncio.Semaphore(CONCURRENCY)
    since_ms = max(0, parse_id(watermark)[0] - SLACK_MS)

    async def partners(user: str) -> list[str]:
        async with limit:
            return [
                conversation_key(user, other)
                for other in await directory.active_since(user, since_ms, MAX_PARTNERS)
            ]

    async def read(key: str, event: str) -> list[Missed]:
        async with limit:
            page = await history.after(key, heard.get(key, watermark))
        found = [Missed(key, event, _targets(event, key, m), m) for m in page.messages]
        found += [Missed(key, "message_updated", _targets(event, key, m), m) for m in page.updates]
        return sorted(found, key=lambda item: position(item.message))

    keys = {room_channel(room): "message" for room in rooms}
    for found in await asyncio.gather(*(partners(user) for user in set(users))):
        keys.update(dict.fromkeys(found, "private_message"))
    pages = await asyncio.gather(*(read(key, event) for key, event in keys.items()))
    return [item for page in pages for item in page]


def _targets(event: str, key: str, message: Record) -> str | list[str]:
    if event == "message":
        return key
    return [user_channel(message["to"]), user_channel(message["from"])]


#: How ``transport`` asks for the missed messages of its local connections.
MissedFinder = Callable[
    [Iterable[str], Iterable[str], Mapping[str, str], str], Awaitable[list[Missed]]
]


def finder(history: History, directory: Directory) -> MissedFinder:
    """``missed_messages`` bound to one chat's stores."""

    def find(
        rooms: Iterable[str], users: Iterable[str], heard: Mapping[str, str], watermark: str
    ) -> Awaitable[list[Missed]]:
        return missed_messages(
            history, directory, rooms=rooms, users=users, heard=heard, watermark=watermark
        )

    return find
