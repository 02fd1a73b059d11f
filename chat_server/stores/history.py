"""History stores: the last N messages of each room and private conversation.

Two flavours behind one interface, chosen in ``app.py``: ``MemoryHistory`` for a
single process and ``RedisHistory`` (capped Redis streams) for several. Both
hand out ids of ``ids.py``: unique across conversations and processes, ordered
within a conversation.
"""

from __future__ import annotations

import bisect
import collections
import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from chat_server.core.ids import format_id, parse_id
from chat_server.core.ports import ONCE_SECONDS, History, Page, Publication, Record

__all__ = ["History", "MemoryHistory", "Page", "RedisHistory"]


#: Idempotency keys the memory store remembers at most; past it the oldest go
#: first, so that a flood of sends cannot grow memory without bound.
MAX_ONCE_KEYS = 100_000


def _stamped(message_id: str, record: Record) -> Record:
    return {"id": message_id, **record, "ts": parse_id(message_id)[0]}


class _OnceKeys:
    """Idempotency keys with the id they stored, each kept ``ONCE_SECONDS``.

    Every key lives as long, so insertion order is expiry order and expired
    keys are dropped from the front.
    """

    def __init__(self, limit: int = MAX_ONCE_KEYS) -> None:
        self.limit = limit
        self._ids: collections.OrderedDict[str, tuple[float, str]] = collections.OrderedDict()

    def get(self, once: str) -> str | None:
        self._expire(time.monotonic())
        entry = self._ids.get(once)
        return None if entry is None else entry[1]

    def put(self, once: str, message_id: str) -> None:
        self._ids[once] = (time.monotonic() + ONCE_SECONDS, message_id)
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._ids:
            deadline, _ = next(iter(self._ids.values()))
            if deadline > now:
                return
            self._ids.popitem(last=False)


@dataclass(slots=True)
class _Conversation:
    ids: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    trimmed: str | None = None  # newest id that was dropped to keep the cap


class MemoryHistory:
    """History kept in this process's memory.

    :param size: messages kept per conversation (``CHAT_HISTORY_SIZE``).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._conversations: dict[str, _Conversation] = {}
        self._last_ms = 0
        self._seq = 0
        self._once = _OnceKeys()

    def _next_id(self) -> str:
        # Like a Redis stream: the clock never goes back, the counter never repeats.
        self._last_ms = max(self._last_ms, int(time.time() * 1000))
        self._seq += 1
        return format_id(self._last_ms, self._seq)

    async def append(
        self, key: str, record: Record, publication: Publication | None = None
    ) -> Record:
        if publication is not None:
            raise NotImplementedError("the memory store has no bus to publish on")
        conv = self._conversations.setdefault(key, _Conversation())
        message_id = self._next_id()
        conv.ids.append(message_id)
        conv.records.append(record)
        excess = len(conv.ids) - self.size
        if excess > 0:
            conv.trimmed = conv.ids[excess - 1]
            del conv.ids[:excess], conv.records[:excess]
        return _stamped(message_id, record)

    async def append_once(
        self, key: str, record: Record, once: str, publication: Publication | None = None
    ) -> tuple[Record, bool]:
        prior = self._once.get(once)
        if prior is not None:
            return _stamped(prior, record), True
        # No suspension point from the look-up to the store: one process
        # cannot interleave two sends of one key.
        message = await self.append(key, record, publication)
        self._once.put(once, message["id"])
        return message, False

    async def latest(self, key: str, limit: int) -> list[Record]:
        return await self.before(key, None, limit)

    async def before(self, key: str, before: str | None, limit: int) -> list[Record]:
        conv = self._conversations.get(key)
        if conv is None:
            return []
        end = len(conv.ids) if before is None else bisect.bisect_left(conv.ids, before)
        start = max(0, end - limit)
        return [
            _stamped(i, r)
            for i, r in zip(conv.ids[start:end], conv.records[start:end], strict=True)
        ]

    async def after(self, key: str, since: str) -> Page:
        conv = self._conversations.get(key)
        if conv is None:
            return Page([], True)
        start = bisect.bisect_right(conv.ids, since)
        messages = [
            _stamped(i, r) for i, r in zip(conv.ids[start:], conv.records[start:], strict=True)
        ]
        return Page(messages, conv.trimmed is None or since >= conv.trimmed)


# Runs atomically in Redis: takes the id from Redis's clock and a counter shared
# by all conversations, remembers the newest id that the cap trims away (so
# ``after`` can tell whether anything was lost), appends, and (given a channel)
# publishes the message framed by ARGV[4] and ARGV[5]. Redis runs scripts one
# at a time, so publications leave in id order and every subscriber hears them
# so: that is what keeps each conversation in id order on every process.
#
# With KEYS[4], an idempotency key: if it holds an id, that id is returned with
# 1 and nothing is written; otherwise the new id is kept under it for ARGV[6]
# seconds. Both in the one script, so racing retries store exactly once and a
# send with a key costs no extra round trip.
_APPEND_SCRIPT = """
if KEYS[4] then
  local prior = redis.call('GET', KEYS[4])
  if prior then return {prior, 1} end
end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('INCR', KEYS[3])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local last_ms = tonumber(string.match(last[1][1], '^(%d+)-'))
  if last_ms > ms then ms = last_ms end
end
local cap = tonumber(ARGV[1])
local len = redis.call('XLEN', KEYS[1])
if len >= cap then
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - cap + 1)
  redis.call('SET', KEYS[2], old[#old][1])
end
local id = string.format('%d-%d', ms, seq)
redis.call('XADD', KEYS[1], 'MAXLEN', cap, id, 'd', ARGV[2])
if ARGV[3] ~= '' then
  local wire = string.format('%015d-%016d', ms, seq)
  local body = string.sub(ARGV[2], 2, -2)
  local message = '{"id":"' .. wire .. '",' .. body .. ',"ts":' .. string.format('%d', ms) .. '}'
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. message .. ARGV[5])
end
if KEYS[4] then redis.call('SET', KEYS[4], id, 'EX', ARGV[6]) end
return {id, 0}
"""


def _stream_id(message_id: str) -> str:
    ms, seq = parse_id(message_id)
    return f"{ms}-{seq}"


def _wire_id(stream_id: str | bytes) -> str:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return format_id(int(ms), int(seq))


class RedisHistory:
    """History kept in capped Redis streams, shared by every process.

    :param redis: a ``redis.asyncio.Redis`` client (``decode_responses`` off).
    :param size: messages kept per conversation (``CHAT_HISTORY_SIZE``).
    :param prefix: key prefix, so several chats can share one Redis database.
    """

    def __init__(self, redis: aioredis.Redis, size: int, prefix: str = "chat:") -> None:
        self.redis = redis
        self.size = size
        self.prefix = prefix
        self._append = redis.register_script(_APPEND_SCRIPT)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}h:{key}", f"{self.prefix}trimmed:{key}"

    async def append(
        self, key: str, record: Record, publication: Publication | None = None
    ) -> Record:
        message, _ = await self._store(key, record, None, publication)
        return message

    async def append_once(
        self, key: str, record: Record, once: str, publication: Publication | None = None
    ) -> tuple[Record, bool]:
        return await self._store(key, record, f"{self.prefix}once:{once}", publication)

    async def _store(
        self, key: str, record: Record, once: str | None, publication: Publication | None
    ) -> tuple[Record, bool]:
        stream, trimmed = self._keys(key)
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        frame = ("", "", "")
        if publication is not None:
            frame = (publication.channel, publication.head, publication.tail)
        keys = [stream, trimmed, f"{self.prefix}seq"]
        if once is not None:
            keys.append(once)
        raw_id, replayed = await self._append(
            keys=keys, args=[self.size, data, *frame, ONCE_SECONDS]
        )
        return _stamped(_wire_id(raw_id), record), bool(replayed)

    async def latest(self, key: str, limit: int) -> list[Record]:
        return await self.before(key, None, limit)

    async def before(self, key: str, before: str | None, limit: int) -> list[Record]:
        stream, _ = self._keys(key)
        top = "+" if before is None else f"({_stream_id(before)}"
        entries = await self.redis.xrevrange(stream, top, "-", count=limit)
        return [self._decode(entry) for entry in reversed(entries or [])]

    async def after(self, key: str, since: str) -> Page:
        stream, trimmed = self._keys(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(stream, f"({_stream_id(since)}", "+")
            pipe.get(trimmed)
            entries, last_trimmed = await pipe.execute()
        recovered = last_trimmed is None or since >= _wire_id(last_trimmed)
        return Page([self._decode(entry) for entry in entries], recovered)

    @staticmethod
    def _decode(entry: Any) -> Record:
        raw_id, fields = entry
        record: Record = json.loads(fields[b"d"])
        return _stamped(_wire_id(raw_id), record)
