"""Presence stores: which users are in which room, across every process.

The chat service counts a user's connections in this process and calls the
store only when that count goes 0 -> 1 (``add``) or 1 -> 0 (``remove``); the
store answers whether that made the user new to the room, or gone from it, in
the whole chat. ``MemoryPresence`` serves a single process; ``RedisPresence``
keeps entries that expire unless their process keeps refreshing them, so the
users of a process that dies without a goodbye drop out on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Iterable

import redis.asyncio as aioredis

from chat_server.core.ports import Presence
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["MemoryPresence", "Presence", "RedisPresence"]

log = logging.getLogger(__name__)


class MemoryPresence:
    """Presence of a chat that lives in one process."""

    def __init__(self) -> None:
        self._rooms: dict[str, set[str]] = {}

    async def add(self, room: str, user: str) -> bool:
        users = self._rooms.setdefault(room, set())
        new = user not in users
        users.add(user)
        return new

    async def remove(self, room: str, user: str) -> bool:
        users = self._rooms.get(room)
        if users is None or user not in users:
            return False
        users.discard(user)
        if not users:
            del self._rooms[room]
        return True

    async def present(self, room: str, user: str) -> bool:
        return user in self._rooms.get(room, ())

    async def members(self, room: str) -> list[str]:
        return sorted(self._rooms.get(room, ()))


# Redis layout, all times from Redis's own clock so processes need not agree:
#   <prefix>p:<room>          ZSET user -> expiry (ms) of the user's freshest entry
#   <prefix>pu:<room>:<user>  ZSET process id -> expiry (ms)
# (on a cluster ``<room>`` is ``{room:<room>}``: a room's two keys share a slot;
# stores/keys.py).
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_ADD_SCRIPT = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', expiry, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if others == 0 then return 1 end
return 0
"""
)

_REMOVE_SCRIPT = (
    _NOW
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 then
  return redis.call('ZREM', KEYS[1], ARGV[2])
end
return 0
"""
)

_MEMBERS_SCRIPT = (
    _NOW
    + """
return redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')
"""
)

_PRESENT_SCRIPT = (
    _NOW
    + """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) > now then return 1 end
return 0
"""
)

# KEYS: room zset, user zset, room zset, user zset, ...; ARGV: process, ttl, users...
_REFRESH_SCRIPT = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[2])
for i = 1, #KEYS, 2 do
  redis.call('ZADD', KEYS[i + 1], expiry, ARGV[1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[2])
  redis.call('ZADD', KEYS[i], 'GT', expiry, ARGV[2 + (i + 1) / 2])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return #KEYS / 2
"""
)

REFRESH_BATCH = 256
#: Seconds before the first, and at most between two, retries of a removal
#: whose add or remove had failed.
SETTLE_FIRST_DELAY = 0.25
SETTLE_MAX_DELAY = 5.0


class RedisPresence:
    """Presence shared by every process through Redis.

    :param redis: a ``redis.asyncio.Redis`` client.
    :param ttl: seconds an entry outlives its process's last refresh; the
                process refreshes every third of it, so a dead process's users
                drop out of ``members`` within ``ttl`` seconds.
    :param keys: the key names (``stores/keys.py``).
    """

    def __init__(self, redis: aioredis.Redis, ttl: float = 45.0, keys: KeyLayout = PLAIN) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl * 1000)
        self.keys = keys
        self.process_id = uuid.uuid4().hex
        self._held: set[tuple[str, str]] = set()
        #: Entries whose add or remove failed: Redis may still run it late (a
        #: frozen Redis does), so each is removed again once Redis answers,
        #: unless the user is back in the meantime.
        self._unsettled: set[tuple[str, str]] = set()
        self._settler: asyncio.Task[None] | None = None
        self._add = redis.register_script(_ADD_SCRIPT)
        self._remove = redis.register_script(_REMOVE_SCRIPT)
        self._members = redis.register_script(_MEMBERS_SCRIPT)
        self._present = redis.register_script(_PRESENT_SCRIPT)
        self._refresh = redis.register_script(_REFRESH_SCRIPT)

    def _keys(self, room: str, user: str) -> list[str]:
        return [self.keys.presence(room), self.keys.presence_entry(room, user)]

    async def add(self, room: str, user: str) -> bool:
        pair = (room, user)
        self._held.add(pair)
        self._unsettled.discard(pair)
        try:
            new = await self._add(
                keys=self._keys(room, user), args=[self.process_id, user, self.ttl_ms]
            )
        except BaseException:
            # The join failed: refreshing this entry would make a ghost member
            # of a user who is not in the room, and the add may yet run.
            self._held.discard(pair)
            self._unsettle(pair)
            raise
        return bool(new)

    async def remove(self, room: str, user: str) -> bool:
        pair = (room, user)
        self._held.discard(pair)
        self._unsettled.discard(pair)
        try:
            gone = await self._remove(keys=self._keys(room, user), args=[self.process_id, user])
        except BaseException:
            self._unsettle(pair)
            raise
        return bool(gone)

    def _unsettle(self, pair: tuple[str, str]) -> None:
        self._unsettled.add(pair)
        if self._settler is None or self._settler.done():
            self._settler = asyncio.get_running_loop().create_task(self._settle())

    async def _settle(self) -> None:
        """Remove the unsettled entries again until Redis has answered for each."""
        delay = SETTLE_FIRST_DELAY
        while self._unsettled:
            await asyncio.sleep(delay)
            for pair in list(self._unsettled):
                if pair in self._held:  # back in the room: its own add settled it
                    self._unsettled.discard(pair)
                    continue
                try:
                    await self._remove(keys=self._keys(*pair), args=[self.process_id, pair[1]])
                except Exception:
                    delay = min(delay * 2, SETTLE_MAX_DELAY)
                    break
                self._unsettled.discard(pair)

    async def present(self, room: str, user: str) -> bool:
        return bool(await self._present(keys=[self.keys.presence(room)], args=[user]))

    async def members(self, room: str) -> list[str]:
        raw = await self._members(keys=[self.keys.presence(room)], args=[])
        return sorted(user.decode() for user in raw)

    async def refresh(self) -> None:
        """Extend the life of every entry this process holds."""
        held = sorted(self._held)
        if self.keys.cluster:
            # A script touches one slot: one room's entries per batch.
            rooms = [list(pairs) for _, pairs in itertools.groupby(held, key=lambda p: p[0])]
        else:
            rooms = [held]
        for pairs in rooms:
            for start in range(0, len(pairs), REFRESH_BATCH):
                await self._refresh_batch(pairs[start : start + REFRESH_BATCH])

    async def _refresh_batch(self, pairs: Iterable[tuple[str, str]]) -> None:
        keys: list[str] = []
        users: list[str] = []
        for room, user in pairs:
            keys += self._keys(room, user)
            users.append(user)
        if keys:
            await self._refresh(keys=keys, args=[self.process_id, self.ttl_ms, *users])

    async def run_refresher(self) -> None:
        """Refresh forever, every third of the ttl; errors are logged and retried."""
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await self.refresh()
            except Exception as exc:
                # Redis being down is reported elsewhere (/healthz, metrics); one line will do.
                log.warning("could not refresh presence in Redis: %s", exc)

    async def forget_all(self) -> None:
        """Say goodbye for every entry this process holds (on a clean shutdown)."""
        if self._settler is not None:
            self._settler.cancel()
        for room, user in list(self._held | self._unsettled):
            with contextlib.suppress(Exception):
                await self._remove(keys=self._keys(room, user), args=[self.process_id, user])
        self._held.clear()
        self._unsettled.clear()
