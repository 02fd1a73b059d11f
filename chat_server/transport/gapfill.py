"""Filling the gap a lost Redis subscription leaves, before anything newer is delivered.

The bus tells ``GapFiller`` every message it hears (``hear``) and, once a lost
subscription is back but before reading from it, asks it to ``fill`` the gap:
the messages of this process's rooms and users' conversations stored after
the last one heard of each are delivered from history, each conversation in
id order. What the new subscription then brings again is dropped, as is
anything older than what a connection was already given, so every
connection keeps receiving each conversation in id order.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import Any

from chat_server.core.catchup import MissedFinder, history_key, position
from chat_server.core.ids import format_id
from chat_server.core.metrics import Metrics
from chat_server.core.names import room_channel, user_channel

__all__ = ["GapFiller"]

#: Conversations whose last heard id is remembered; older ones fall back to
#: the watermark (the largest id heard), which reads a little more history.
MAX_CONVERSATIONS = 100_000
_ROOM, _USER = room_channel(""), user_channel("")

Deliver = Callable[[str, dict[str, Any], "str | list[str]"], Awaitable[None]]


class GapFiller:
    """The last id heard per conversation, and the catch-up after a lost subscription.

    :param find: reads what the local connections' conversations missed.
    :param metrics: counts the messages delivered from history.
    """

    def __init__(self, find: MissedFinder, metrics: Metrics) -> None:
        self.find = find
        self.metrics = metrics
        self.watermark: str | None = None
        self._heard: collections.OrderedDict[str, str] = collections.OrderedDict()

    def start(self, redis_ms: int) -> None:
        """Subscribed at Redis time ``redis_ms``: later messages are heard or filled."""
        if self.watermark is None:
            self.watermark = format_id(redis_ms, 0)

    def hear(self, event: str, data: Any) -> bool:
        """Note a message heard on the bus; False when it was delivered already."""
        key = history_key(event, data)
        if key is None:
            return True
        at = position(data)
        last = self._heard.get(key)
        if last is not None and at <= last:
            return False
        self._remember(key, at)
        if self.watermark is None or at > self.watermark:
            self.watermark = at
        return True

    def forget(self, group: str) -> None:
        """Forget what was heard of ``group``'s conversation (a room, or a user's).

        Called when this process starts listening to a group it was not
        listening to: what it heard of it before is stale, and a fill must
        not read from there (the connections that joined since got the
        history in their ``join``). A forgotten room is read after the
        watermark. A user's private conversations are keyed by both users,
        so nothing is kept per user to forget.
        """
        self._heard.pop(group, None)

    async def fill(self, channels: list[str], deliver: Deliver) -> int:
        """Deliver what ``channels`` (this process's groups) missed; the count delivered."""
        if self.watermark is None:
            return 0
        rooms = [c.removeprefix(_ROOM) for c in channels if c.startswith(_ROOM)]
        users = [c.removeprefix(_USER) for c in channels if c.startswith(_USER)]
        missed = await self.find(rooms, users, dict(self._heard), self.watermark)
        delivered = 0
        for item in missed:
            at = position(item.message)
            last = self._heard.get(item.key)
            if last is not None and at <= last:
                continue
            self._remember(item.key, at)
            await deliver(item.event, item.message, item.to)
            delivered += 1
        self.metrics.redis_gap_filled.inc(delivered)
        return delivered

    def _remember(self, key: str, message_id: str) -> None:
        self._heard[key] = message_id
        self._heard.move_to_end(key)
        if len(self._heard) > MAX_CONVERSATIONS:
            self._heard.popitem(last=False)
