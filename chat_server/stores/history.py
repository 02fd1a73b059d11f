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
from redis.crc import key_slot

from chat_server.core.changes import MAX_REACTIONS, Change, apply_change, refusal
from chat_server.core.ids import format_id, parse_id
from chat_server.core.ports import (
    ONCE_SECONDS,
    Changed,
    History,
    HookEvent,
    Page,
    Publication,
    Record,
)
from chat_server.stores import scripts
from chat_server.stores.keys import PLAIN, KeyLayout

__all__ = ["History", "MemoryHistory", "Page", "RedisHistory"]


#: Idempotency keys the memory store remembers at most; past it the oldest go
#: first, so that a flood of sends cannot grow memory without bound.
MAX_ONCE_KEYS = 100_000


def _stamped(message_id: str, record: Record) -> Record:
    """A message as first sent: its rev is its id until it changes."""
    return {"id": message_id, **record, "ts": parse_id(message_id)[0], "rev": message_id}


def _unread(messages: list[Record], user: str) -> int:
    return sum(1 for m in messages if m["from"] != user and not m.get("deleted"))


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
    # id -> current state of each kept message that changed (rev included)
    states: dict[str, Record] = field(default_factory=dict)
    trimmed: str | None = None  # newest id that was dropped to keep the cap

    def current(self, index: int) -> Record:
        message_id = self.ids[index]
        state = self.states.get(message_id)
        return state if state is not None else _stamped(message_id, self.records[index])

    def index(self, message_id: str) -> int | None:
        index = bisect.bisect_left(self.ids, message_id)
        return index if index < len(self.ids) and self.ids[index] == message_id else None


class MemoryHistory:
    """History kept in this process's memory.

    :param size: messages kept per conversation (``CHAT_HISTORY_SIZE``).
    """

    #: The webhook queue is not ours: ``Webhooks.notify`` fills it after the append.
    queues_hooks = False

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
        self,
        key: str,
        record: Record,
        publication: Publication | None = None,
        hook: HookEvent | None = None,
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
            for gone in conv.ids[:excess]:
                conv.states.pop(gone, None)
            del conv.ids[:excess], conv.records[:excess]
        return _stamped(message_id, record)

    async def append_once(
        self,
        key: str,
        record: Record,
        once: str,
        publication: Publication | None = None,
        hook: HookEvent | None = None,
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
        return [conv.current(i) for i in range(max(0, end - limit), end)]

    async def after(self, key: str, since: str) -> Page:
        conv = self._conversations.get(key)
        if conv is None:
            return Page([], True, [])
        start = bisect.bisect_right(conv.ids, since)
        messages = [conv.current(i) for i in range(start, len(conv.ids))]
        updates = sorted(
            (s for i, s in conv.states.items() if i <= since < s["rev"]),
            key=lambda state: str(state["rev"]),
        )
        return Page(messages, conv.trimmed is None or since >= conv.trimmed, updates)

    async def change(
        self,
        key: str,
        message_id: str,
        change: Change,
        publication: Publication | None = None,
    ) -> Changed:
        if publication is not None:
            raise NotImplementedError("the memory store has no bus to publish on")
        conv = self._conversations.get(key)
        index = None if conv is None else conv.index(message_id)
        if conv is None or index is None:
            raise refusal("not_found")
        current = conv.current(index)
        changed = apply_change(current, change, int(time.time() * 1000))
        if changed is None:
            return Changed(current, False)
        changed["rev"] = self._next_id()
        conv.states[message_id] = changed
        return Changed(changed, True)

    async def unread(self, key: str, user: str, marker: str | None) -> int:
        conv = self._conversations.get(key)
        if conv is None:
            return 0
        start = 0 if marker is None else bisect.bisect_right(conv.ids, marker)
        return _unread([conv.current(i) for i in range(start, len(conv.ids))], user)


def _stream_id(message_id: str) -> str:
    ms, seq = parse_id(message_id)
    return f"{ms}-{seq}"


def _wire_id(stream_id: str | bytes) -> str:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return format_id(int(ms), int(seq))


class RedisHistory:
    """History kept in capped Redis streams, shared by every process.

    :param redis: a ``redis.asyncio.Redis`` client, or a ``RedisCluster``
        (``decode_responses`` off).
    :param size: messages kept per conversation (``CHAT_HISTORY_SIZE``).
    :param keys: the key names (``stores/keys.py``): a cluster layout
        publishes with ``SPUBLISH``.
    :param hook_stream: the webhook stream (``stores/webhooks.py``) when
        webhooks are on, and ``hook_cap`` its length cap: each message's
        webhook event is then queued by the script that stores it. Ignored
        on a cluster, where the stream lives in another slot than the
        conversation.

    On a cluster a script can publish only on channels of its own slot, a
    room's; a private message's user channels live elsewhere, so those
    publications leave from here right after the script (``docs/scaling.md``
    says what that means for their order).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        size: int,
        keys: KeyLayout = PLAIN,
        *,
        hook_stream: str | None = None,
        hook_cap: int = 100_000,
    ) -> None:
        self.redis = redis
        self.size = size
        self.keys = keys
        self.hook_stream = None if keys.cluster else hook_stream
        self.hook_cap = hook_cap
        self.queues_hooks = self.hook_stream is not None
        self._publish = "SPUBLISH" if keys.cluster else "PUBLISH"
        self._append = redis.register_script(scripts.APPEND)
        self._before = redis.register_script(scripts.BEFORE)
        self._after = redis.register_script(scripts.AFTER)
        self._change = redis.register_script(scripts.CHANGE)
        self._unread = redis.register_script(scripts.UNREAD)

    def _keys(self, key: str) -> tuple[str, str, str, str]:
        """Stream, trimmed marker, states hash, revs set (``stores/scripts.py``)."""
        names = self.keys.history(key)
        return names.stream, names.trimmed, names.states, names.revs

    def _split(
        self, key: str, publication: Publication | None
    ) -> tuple[Publication | None, tuple[str, ...]]:
        """What the script publishes, and the channels left for ``_publish_after``."""
        if publication is None or not self.keys.cluster:
            return publication, ()
        slot = key_slot(key.encode())
        inside = tuple(c for c in publication.channels if key_slot(c.encode()) == slot)
        after = tuple(c for c in publication.channels if c not in inside)
        if not inside:
            return None, after
        return Publication(inside, publication.head, publication.tail), after

    async def _publish_after(
        self,
        publication: Publication | None,
        channels: tuple[str, ...],
        message: str,
        order: list[Any],
    ) -> None:
        """Publish on the channels the script could not reach, with the event's place.

        ``order`` is ``[conversation, this event, the one before]`` (wire
        ids or revs): two processes' publications may cross on the way, and
        the receiving bus (``transport/reorder.py``) puts them back in order.
        """
        if publication is None or not channels:
            return
        tail = publication.tail[:-1] + ',"order":' + json.dumps(order) + publication.tail[-1]
        framed = publication.head + message + tail
        for channel in channels:
            await self.redis.execute_command(self._publish, channel, framed)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    async def append(
        self,
        key: str,
        record: Record,
        publication: Publication | None = None,
        hook: HookEvent | None = None,
    ) -> Record:
        message, _ = await self._store(key, record, None, publication, hook)
        return message

    async def append_once(
        self,
        key: str,
        record: Record,
        once: str,
        publication: Publication | None = None,
        hook: HookEvent | None = None,
    ) -> tuple[Record, bool]:
        return await self._store(key, record, self.keys.once(key, once), publication, hook)

    async def _store(
        self,
        key: str,
        record: Record,
        once: str | None,
        publication: Publication | None,
        hook: HookEvent | None,
    ) -> tuple[Record, bool]:
        stream, trimmed, states, revs = self._keys(key)
        seq = self.keys.seq(key)
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        keys = [stream, trimmed, seq.key, states, revs]
        inside, after = self._split(key, publication)
        args: list[Any] = [
            self.size,
            data,
            *_frame(inside),
            ONCE_SECONDS,
            self._publish,
            seq.multiplier,
            seq.offset,
        ]
        if hook is not None and self.hook_stream is not None:
            keys += [once or "", self.hook_stream]
            args += [self.hook_cap, hook.event_id, hook.type, *hook.urls]
        elif once is not None:
            keys.append(once)
        raw_id, replayed, prev, queued = await self._append(keys=keys, args=args)
        if hook is not None:
            hook.queued = int(queued)
        message = _stamped(_wire_id(raw_id), record)
        if not replayed:
            order = [key, message["id"], _text(prev)]
            await self._publish_after(publication, after, _message_json(message, data), order)
        return message, bool(replayed)

    async def latest(self, key: str, limit: int) -> list[Record]:
        return await self.before(key, None, limit)

    async def before(self, key: str, before: str | None, limit: int) -> list[Record]:
        stream, _, states, _ = self._keys(key)
        top = "+" if before is None else f"({_stream_id(before)}"
        flat = await self._before(keys=[stream, states], args=[top, limit])
        return list(reversed(_decode(flat)))

    async def after(self, key: str, since: str) -> Page:
        stream, trimmed, states, revs = self._keys(key)
        flat, last_trimmed, updates = await self._after(
            keys=[stream, trimmed, states, revs], args=[f"({_stream_id(since)}", since]
        )
        recovered = not last_trimmed or since >= _wire_id(last_trimmed)
        return Page(_decode(flat), recovered, [json.loads(state) for state in updates])

    async def change(
        self,
        key: str,
        message_id: str,
        change: Change,
        publication: Publication | None = None,
    ) -> Changed:
        stream, _, states, revs = self._keys(key)
        seq = self.keys.seq(key)
        inside, after = self._split(key, publication)
        flags = ("1" if change.moderates else "0", "1" if change.add else "0")
        args = [_stream_id(message_id), message_id, change.op, change.actor, flags[0]]
        args += [change.text, change.emoji, flags[1], *_frame(inside), str(MAX_REACTIONS)]
        args += [self._publish, str(seq.multiplier), str(seq.offset)]
        reply = await self._change(keys=[stream, states, revs, seq.key], args=args)
        status = reply[0].decode()
        if status not in ("ok", "same"):
            raise refusal(status)
        changed = json.loads(reply[1])
        if status == "ok":
            order = [key, changed["rev"], _text(reply[2])]
            await self._publish_after(publication, after, reply[1].decode(), order)
        return Changed(changed, status == "ok")

    async def unread(self, key: str, user: str, marker: str | None) -> int:
        stream, _, states, _ = self._keys(key)
        start = "-" if marker is None else f"({_stream_id(marker)}"
        return int(await self._unread(keys=[stream, states], args=[start, user]))


def _frame(publication: Publication | None) -> tuple[str, str, str]:
    """A publication as script arguments: channels (space-separated), head, tail ('' for none)."""
    if publication is None:
        return ("", "", "")
    return (" ".join(publication.channels), publication.head, publication.tail)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


def _message_json(message: Record, data: str) -> str:
    """A stored message's JSON exactly as the append script frames it."""
    wire, ts = message["id"], message["ts"]
    return f'{{"id":"{wire}",{data[1:-1]},"ts":{ts},"rev":"{wire}"}}'


def _decode(flat: list[Any]) -> list[Record]:
    """Messages from a script's flat triplets of stream id, record, state."""
    messages = []
    for i in range(0, len(flat), 3):
        raw_id, data, state = flat[i : i + 3]
        messages.append(
            json.loads(state) if state else _stamped(_wire_id(raw_id), json.loads(data))
        )
    return messages
