"""Remembered answers of REST emits by ``Idempotency-Key`` (``ports.Idempotency``).

``MemoryIdempotency`` serves one process and holds a bounded number of keys;
``RedisIdempotency`` claims a key with ``SET NX EX``, so of two processes
racing with one key exactly one runs the request.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass

import redis.asyncio as aioredis

from chat_server.core.ports import Idempotency, Record
from chat_server.core.ratelimit import Clock
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["MAX_MEMORY_KEYS", "Idempotency", "MemoryIdempotency", "RedisIdempotency"]

#: Keys kept in memory at most; past it the oldest are forgotten first.
MAX_MEMORY_KEYS = 10_000


class MemoryIdempotency:
    """Entries in this process's memory, oldest first, expiring by themselves.

    :param limit: keys kept at most (the oldest go first past it).
    :param clock: monotonic clock, injectable for tests.
    """

    def __init__(self, limit: int = MAX_MEMORY_KEYS, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, Record]] = OrderedDict()
        self._limit = limit
        self._clock = clock

    async def claim(self, key: str, fingerprint: str, seconds: int) -> Record | None:
        now = self._clock()
        found = self._entries.get(key)
        if found is not None and found[0] > now:
            return found[1]
        self._put(key, {"fingerprint": fingerprint, "answer": None}, now + seconds)
        return None

    async def complete(self, key: str, fingerprint: str, answer: Record, seconds: int) -> None:
        self._put(key, {"fingerprint": fingerprint, "answer": answer}, self._clock() + seconds)

    async def release(self, key: str) -> None:
        self._entries.pop(key, None)

    def _put(self, key: str, entry: Record, until: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (until, entry)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


@dataclass
class RedisIdempotency:
    """Entries in Redis: ``<prefix>idem:<key>`` holding the entry's JSON, with ``EX``.

    ``redis`` is the client, ``keys`` the key names (``stores/keys.py``).
    """

    redis: aioredis.Redis
    keys: KeyLayout = PLAIN

    async def claim(self, key: str, fingerprint: str, seconds: int) -> Record | None:
        name = self.keys.idempotency(key)
        pending = json.dumps({"fingerprint": fingerprint, "answer": None})
        # Twice at most: the entry found may expire between SET NX and GET.
        for _ in range(2):
            if await self.redis.set(name, pending, nx=True, ex=seconds):
                return None
            raw = await self.redis.get(name)
            if raw is not None:
                entry: Record = json.loads(raw)
                return entry
        return None

    async def complete(self, key: str, fingerprint: str, answer: Record, seconds: int) -> None:
        entry = json.dumps({"fingerprint": fingerprint, "answer": answer})
        await self.redis.set(self.keys.idempotency(key), entry, ex=seconds)

    async def release(self, key: str) -> None:
        await self.redis.delete(self.keys.idempotency(key))
