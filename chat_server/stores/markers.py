"""Read markers: the newest message each user has read, per conversation.

Bounded both ways: a user keeps at most ``MAX_MARKERS`` markers (past it a new
conversation's marker replaces another: a random one in Redis, the least
recently set in memory), and a user's markers live ``MARKER_SECONDS`` after
their last change in Redis (the memory store instead keeps at most
``MAX_USERS`` users, dropping the least recently active).
"""

from __future__ import annotations

import collections

import redis.asyncio as aioredis

from chat_server.stores import scripts
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["MARKER_SECONDS", "MAX_MARKERS", "MemoryMarkers", "RedisMarkers"]

#: Markers one user keeps at most.
MAX_MARKERS = 1000
#: Seconds a user's markers are kept after the last one moved (30 days).
MARKER_SECONDS = 30 * 24 * 3600
#: Users whose markers the memory store keeps at most.
MAX_USERS = 100_000


class MemoryMarkers:
    """Read markers in this process's memory."""

    def __init__(self) -> None:
        self._users: collections.OrderedDict[str, collections.OrderedDict[str, str]] = (
            collections.OrderedDict()
        )

    async def mark(self, user: str, key: str, message_id: str) -> tuple[str, bool]:
        markers = self._users.setdefault(user, collections.OrderedDict())
        self._users.move_to_end(user)
        while len(self._users) > MAX_USERS:
            self._users.popitem(last=False)
        current = markers.get(key)
        if current is not None and current >= message_id:
            return current, False
        markers[key] = message_id
        markers.move_to_end(key)
        while len(markers) > MAX_MARKERS:
            markers.popitem(last=False)
        return message_id, True

    async def get_many(self, user: str, keys: list[str]) -> list[str | None]:
        markers = self._users.get(user)
        return [None if markers is None else markers.get(key) for key in keys]


class RedisMarkers:
    """Read markers in one Redis hash per user, shared by every process.

    :param redis: a ``redis.asyncio.Redis`` client (``decode_responses`` off).
    :param keys: the key names (``stores/keys.py``).
    """

    def __init__(self, redis: aioredis.Redis, keys: KeyLayout = PLAIN) -> None:
        self.redis = redis
        self.keys = keys
        self._mark = redis.register_script(scripts.MARK)

    def _key(self, user: str) -> str:
        return self.keys.markers(user)

    async def mark(self, user: str, key: str, message_id: str) -> tuple[str, bool]:
        args = [key, message_id, str(MARKER_SECONDS), str(MAX_MARKERS)]
        kept, moved = await self._mark(keys=[self._key(user)], args=args)
        return kept.decode(), bool(moved)

    async def get_many(self, user: str, keys: list[str]) -> list[str | None]:
        if not keys:
            return []
        found = await self.redis.hmget(self._key(user), keys)
        return [value.decode() if isinstance(value, bytes) else value for value in found]
