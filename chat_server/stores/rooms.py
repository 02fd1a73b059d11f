"""The room registry: who owns a room, who is in it, who moderates it, who is banned.

``MemoryRooms`` serves one process. ``RedisRooms`` keeps every room under keys
that share the hash tag ``{room:<name>}`` (so a Redis Cluster keeps one room in
one slot) and changes them only in Lua scripts or MULTI, so two processes never
see half a change. Nothing here expires by itself except bans, which lapse at
their time when read: a room outlives a restart of every process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import redis.asyncio as aioredis

from chat_server.core.ports import RoomAccess, Rooms, RoomState
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["MemoryRooms", "RedisRooms", "Rooms"]


def _in_force(until: int | None, now_ms: int) -> bool:
    """Whether a ban lapsing at ``until`` (0: never, None: no ban) holds at ``now_ms``."""
    return until is not None and (until == 0 or until > now_ms)


class MemoryRooms:
    """Rooms kept in this process's memory."""

    def __init__(self) -> None:
        self._rooms: dict[str, RoomState] = {}
        self._bans: dict[str, dict[str, int]] = {}

    async def create(
        self, room: str, owner: str, *, private: bool, topic: str, created_ts: int
    ) -> RoomState | None:
        if room in self._rooms:
            return None
        state = RoomState(room, private, topic, owner, created_ts, frozenset(), frozenset({owner}))
        self._rooms[room] = state
        return state

    async def state(self, room: str) -> RoomState | None:
        return self._rooms.get(room)

    async def access(self, room: str, user: str, now_ms: int) -> RoomAccess:
        until = self._bans.get(room, {}).get(user)
        ban_until = until if _in_force(until, now_ms) else None
        state = self._rooms.get(room)
        if state is None:
            return RoomAccess(False, False, False, ban_until)
        return RoomAccess(True, state.private, user in state.members, ban_until)

    def _replace(self, room: str, **changes: Any) -> bool:
        state = self._rooms.get(room)
        if state is None:
            return False
        self._rooms[room] = dataclasses.replace(state, **changes)
        return True

    async def set_topic(self, room: str, topic: str) -> bool:
        return self._replace(room, topic=topic)

    async def add_member(self, room: str, user: str) -> bool:
        state = self._rooms.get(room)
        return state is not None and self._replace(room, members=state.members | {user})

    async def remove_member(self, room: str, user: str) -> None:
        state = self._rooms.get(room)
        if state is None or user == state.owner:
            return
        self._replace(room, members=state.members - {user}, moderators=state.moderators - {user})

    async def set_moderator(self, room: str, user: str, moderator: bool) -> bool:
        state = self._rooms.get(room)
        if state is None or user == state.owner:
            return False
        if moderator:
            return self._replace(
                room, moderators=state.moderators | {user}, members=state.members | {user}
            )
        return self._replace(room, moderators=state.moderators - {user})

    async def ban(self, room: str, user: str, until_ms: int) -> None:
        self._bans.setdefault(room, {})[user] = until_ms

    async def unban(self, room: str, user: str) -> bool:
        return self._bans.get(room, {}).pop(user, None) is not None

    async def bans(self, room: str, now_ms: int) -> dict[str, int]:
        bans = self._bans.get(room, {})
        for user in [u for u, until in bans.items() if not _in_force(until, now_ms)]:
            del bans[user]
        return dict(bans)


# KEYS: settings, members, moderators, bans. ARGV: user, now (ms).
# Answers {created, private, member, ban_until or -1}: everything a join needs
# in one round trip.
_ACCESS_SCRIPT = """
local lapse = -1
local ban = redis.call('HGET', KEYS[4], ARGV[1])
if ban then
  local u = tonumber(ban)
  if u == 0 or u > tonumber(ARGV[2]) then lapse = u end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0, lapse} end
local private = tonumber(redis.call('HGET', KEYS[1], 'p'))
return {1, private, redis.call('SISMEMBER', KEYS[2], ARGV[1]), lapse}
"""

# KEYS: settings, members, moderators. ARGV: op, user or topic, then per op.
# Every change of a created room, guarded by the room existing (and, where
# it concerns a user, by that user not being the owner), in one script so the
# guard and the change are one step. Answers 1 when it changed, 0 otherwise.
_EDIT_SCRIPT = """
local op = ARGV[1]
if op == 'create' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('HSET', KEYS[1], 'o', ARGV[2], 'p', ARGV[3], 't', ARGV[4], 'c', ARGV[5])
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if op == 'topic' then
  redis.call('HSET', KEYS[1], 't', ARGV[2])
  return 1
end
if op == 'add' then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
if redis.call('HGET', KEYS[1], 'o') == ARGV[2] then return 0 end
if op == 'remove' then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SREM', KEYS[3], ARGV[2])
elseif op == 'moderator' then
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[2])
elseif op == 'member' then
  redis.call('SREM', KEYS[3], ARGV[2])
else
  return redis.error_reply('unknown room edit ' .. op)
end
return 1
"""

# KEYS: bans. ARGV: now (ms). Drops the lapsed bans and answers the rest as a
# flat user, until list; dropping in the script means a ban written meanwhile
# is never the one dropped.
# KEYS: settings, members, moderators. One atomic read of the three; a script
# rather than MULTI, which redis-py 8's cluster client cannot read back (its
# transaction passes HGETALL's reply to a callback that refuses ``keys``).
_STATE_SCRIPT = """
return {redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2]),
  redis.call('SMEMBERS', KEYS[3])}
"""

_BANS_SCRIPT = """
local flat = redis.call('HGETALL', KEYS[1])
local kept = {}
for i = 1, #flat, 2 do
  local u = tonumber(flat[i + 1])
  if u == 0 or u > tonumber(ARGV[1]) then
    kept[#kept + 1] = flat[i]
    kept[#kept + 1] = flat[i + 1]
  else
    redis.call('HDEL', KEYS[1], flat[i])
  end
end
return kept
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisRooms:
    """Rooms in Redis, shared by every process and kept across restarts.

    :param redis: the client (``decode_responses`` off).
    :param keys: the key names (``stores/keys.py``); a room's keys share
        one hash tag, so its scripts and transactions stay in one cluster slot.

    Keys of room ``r``: ``<prefix>{room:r}:s`` (hash: owner ``o``, private
    ``p``, topic ``t``, created ``c``), ``:m`` (members), ``:mod``
    (moderators), ``:b`` (hash: user -> lapse ms, 0 for none).
    """

    def __init__(self, redis: aioredis.Redis, keys: KeyLayout = PLAIN) -> None:
        self.redis = redis
        self.keys = keys
        self._access = redis.register_script(_ACCESS_SCRIPT)
        self._edit = redis.register_script(_EDIT_SCRIPT)
        self._bans = redis.register_script(_BANS_SCRIPT)
        self._state = redis.register_script(_STATE_SCRIPT)

    def _keys(self, room: str) -> list[str]:
        return list(self.keys.room(room))

    async def _change(self, room: str, *args: str | int) -> bool:
        return bool(await self._edit(keys=self._keys(room)[:3], args=list(args)))

    async def create(
        self, room: str, owner: str, *, private: bool, topic: str, created_ts: int
    ) -> RoomState | None:
        if not await self._change(room, "create", owner, int(private), topic, created_ts):
            return None
        return RoomState(room, private, topic, owner, created_ts, frozenset(), frozenset({owner}))

    async def state(self, room: str) -> RoomState | None:
        flat, members, moderators = await self._state(keys=self._keys(room)[:3], args=[])
        if not flat:
            return None
        settings = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
        return RoomState(
            name=room,
            private=settings["p"] == "1",
            topic=settings["t"],
            owner=settings["o"],
            created_ts=int(settings["c"]),
            moderators=frozenset(_text(m) for m in moderators),
            members=frozenset(_text(m) for m in members),
        )

    async def access(self, room: str, user: str, now_ms: int) -> RoomAccess:
        created, private, member, until = await self._access(
            keys=self._keys(room), args=[user, now_ms]
        )
        return RoomAccess(bool(created), bool(private), bool(member), None if until < 0 else until)

    async def set_topic(self, room: str, topic: str) -> bool:
        return await self._change(room, "topic", topic)

    async def add_member(self, room: str, user: str) -> bool:
        return await self._change(room, "add", user)

    async def remove_member(self, room: str, user: str) -> None:
        await self._change(room, "remove", user)

    async def set_moderator(self, room: str, user: str, moderator: bool) -> bool:
        return await self._change(room, "moderator" if moderator else "member", user)

    async def ban(self, room: str, user: str, until_ms: int) -> None:
        await self.redis.hset(self._keys(room)[3], user, until_ms)

    async def unban(self, room: str, user: str) -> bool:
        return bool(await self.redis.hdel(self._keys(room)[3], user))

    async def bans(self, room: str, now_ms: int) -> dict[str, int]:
        flat = await self._bans(keys=[self._keys(room)[3]], args=[now_ms])
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
