"""Server-wide bans: users whose handshakes are refused until a time has passed.

``MemoryBans`` serves one process; ``RedisBans`` keeps one key per banned user
with Redis's own expiry, so every process sees a ban at once and it ends by
itself.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from chat_server.core.ports import Bans
from chat_server.core.ratelimit import Clock
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["Bans", "MemoryBans", "RedisBans"]

#: Bans kept in memory at most; expired ones are swept past this.
MAX_MEMORY_BANS = 100_000


class MemoryBans:
    """Bans kept in this process's memory.

    :param clock: monotonic clock, injectable for tests.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock

    async def ban(self, user: str, seconds: int) -> None:
        now = self._clock()
        self._until[user] = now + seconds
        if len(self._until) > MAX_MEMORY_BANS:
            self._until = {u: t for u, t in self._until.items() if t > now}

    async def remaining(self, user: str) -> float:
        until = self._until.get(user)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[user]
            return 0.0
        return left


class RedisBans:
    """Bans in Redis: ``<prefix>ban:<user>`` set with ``EX``, read with ``PTTL``.

    :param redis: the client.
    :param keys: the key names (``stores/keys.py``).
    """

    def __init__(self, redis: aioredis.Redis, keys: KeyLayout = PLAIN) -> None:
        self.redis = redis
        self.keys = keys

    async def ban(self, user: str, seconds: int) -> None:
        await self.redis.set(self.keys.ban(user), "1", ex=seconds)

    async def remaining(self, user: str) -> float:
        milliseconds = int(await self.redis.pttl(self.keys.ban(user)))
        # -2: no such key, -1: no expiry (never written by us); both mean no ban.
        return milliseconds / 1000 if milliseconds > 0 else 0.0
