"""Directories of private conversations: whom each user has talked to, newest first.

The history stores keep the messages; this index lets a client that comes back
on another device, or after an absence, find the conversations it never saw.
``MemoryDirectory`` serves one process, ``RedisDirectory`` every process.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from chat_server.core.ports import Directory
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["Directory", "MemoryDirectory", "RedisDirectory"]

#: Conversations remembered per user; the oldest fall off beyond this.
MAX_PARTNERS = 1000


class MemoryDirectory:
    """A directory kept in this process's memory."""

    def __init__(self) -> None:
        self._partners: dict[str, dict[str, int]] = {}

    async def touch(self, a: str, b: str, ts: int) -> None:
        for user, other in ((a, b), (b, a)):
            partners = self._partners.setdefault(user, {})
            partners.pop(other, None)  # re-insert, so dict order is activity order
            partners[other] = ts
            if len(partners) > MAX_PARTNERS:
                del partners[next(iter(partners))]

    async def partners(self, user: str, limit: int) -> list[str]:
        partners = self._partners.get(user, {})
        return list(reversed(partners))[:limit]

    async def active_since(self, user: str, ms: int, limit: int) -> list[str]:
        found: list[str] = []
        for other, ts in reversed(self._partners.get(user, {}).items()):
            if ts < ms or len(found) == limit:
                break
            found.append(other)
        return found


class RedisDirectory:
    """A directory in Redis sorted sets (``<prefix>dms:<user>``: partner -> ms).

    :param redis: a ``redis.asyncio.Redis`` client.
    :param keys: the key names (``stores/keys.py``).

    The two users' sets may live on two cluster nodes: ``touch`` writes them
    in one pipeline, not one transaction.
    """

    def __init__(self, redis: aioredis.Redis, keys: KeyLayout = PLAIN) -> None:
        self.redis = redis
        self.keys = keys

    async def touch(self, a: str, b: str, ts: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, other in ((a, b), (b, a)):
                key = self.keys.partners(user)
                pipe.zadd(key, {other: ts}, gt=True)
                pipe.zremrangebyrank(key, 0, -MAX_PARTNERS - 1)
            await pipe.execute()

    async def partners(self, user: str, limit: int) -> list[str]:
        raw = await self.redis.zrevrange(self.keys.partners(user), 0, limit - 1)
        return _names(raw)

    async def active_since(self, user: str, ms: int, limit: int) -> list[str]:
        raw = await self.redis.zrevrangebyscore(
            self.keys.partners(user), "+inf", ms, start=0, num=limit
        )
        return _names(raw)


def _names(raw: list[Any]) -> list[str]:
    return [name.decode() if isinstance(name, bytes) else str(name) for name in raw]
