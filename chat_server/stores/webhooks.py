"""Webhook queues: a bounded one in this process's memory, or a Redis stream shared by all.

``MemoryWebhookQueue`` serves a single process: pending events end with it.
``RedisWebhookQueue`` keeps every event in one stream read through one
consumer group, so each event goes to exactly one process; an event stays in
the group's pending list until its process calls ``done``, and one held by a
process that stopped answering (killed, frozen, cut off) is claimed by
another with ``XAUTOCLAIM`` once it has been idle for ``claim_idle`` seconds.
A living process resets that idle time of the events it holds with ``keep``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from chat_server.core.ports import Job, WebhookQueue

__all__ = ["MemoryWebhookQueue", "RedisWebhookQueue", "WebhookQueue"]

log = logging.getLogger(__name__)


class MemoryWebhookQueue:
    """Pending webhooks of a chat that lives in one process.

    :param size: jobs held at most, waiting or taken and not yet done;
        ``put`` refuses what would go past it.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._waiting: collections.deque[Job] = collections.deque()
        self._taken = 0
        self._arrived = asyncio.Event()

    async def put(self, jobs: list[Job]) -> int:
        room = max(0, self.size - len(self._waiting) - self._taken)
        self._waiting.extend(jobs[:room])
        if room:
            self._arrived.set()
        return min(room, len(jobs))

    async def take(self, limit: int, wait: float) -> list[Job]:
        if not self._waiting:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                return []
        jobs = [self._waiting.popleft() for _ in range(min(limit, len(self._waiting)))]
        self._taken += len(jobs)
        return jobs

    async def done(self, jobs: list[Job]) -> None:
        self._taken -= len(jobs)

    async def keep(self, jobs: list[Job]) -> None:
        return None  # no other process could take them


#: Milliseconds a consumer holding nothing must have been idle before another
#: process deletes it; a living process reads at least every second.
GONE_AFTER_MS = 300_000
#: Stream entry fields: url, event id, type, ts (ms), body.
_FIELDS = (b"u", b"i", b"y", b"t", b"b")


class RedisWebhookQueue:
    """Pending webhooks in one Redis stream with one consumer group.

    :param redis: a ``redis.asyncio.Redis`` client.
    :param size: the stream's length cap (``XADD MAXLEN ~``): past it, the
        oldest entries are trimmed, pending or not, so a receiver that stays
        down cannot grow Redis without bound.
    :param claim_idle: seconds an entry taken by a silent process stays its own.
    :param key: the stream's key; ``group``: the consumer group's name.

    Entries are deleted once done, so the stream holds only pending events.
    Each process reads as its own consumer (a random name per start): a
    process that restarts finds its old entries by ``XAUTOCLAIM`` like any other.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        size: int = 100_000,
        claim_idle: float = 30.0,
        key: str = "chat:webhooks",
        group: str = "webhooks",
    ) -> None:
        self.redis = redis
        self.size = size
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        self.key = key
        self.group = group
        self.consumer = uuid.uuid4().hex
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    async def put(self, jobs: list[Job]) -> int:
        entries = [
            dict(zip(_FIELDS, (job.url, job.event_id, job.type, job.ts, job.body), strict=True))
            for job in jobs
        ]
        if len(entries) == 1:  # the usual case, one URL: no pipeline to build
            await self.redis.xadd(self.key, entries[0], maxlen=self.size, approximate=True)  # type: ignore[arg-type]  # redis-py's field type is narrower than what it takes
            return 1
        async with self.redis.pipeline(transaction=False) as pipe:
            for fields in entries:
                pipe.xadd(self.key, fields, maxlen=self.size, approximate=True)  # type: ignore[arg-type]  # as above
            await pipe.execute()
        return len(jobs)

    async def take(self, limit: int, wait: float) -> list[Job]:
        await self._ensure_group()
        try:
            jobs = await self._claim(limit)
            if len(jobs) < limit:
                jobs += await self._read(limit - len(jobs), wait if not jobs else 0)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (a restart without persistence): start over.
            log.warning("the webhook consumer group is gone; making it again")
            self._group_ready = False
            return []
        return jobs

    async def done(self, jobs: list[Job]) -> None:
        refs = [job.ref for job in jobs if job.ref is not None]
        if not refs:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.key, self.group, *refs)
            pipe.xdel(self.key, *refs)
            await pipe.execute()

    async def keep(self, jobs: list[Job]) -> None:
        refs: list[Any] = [job.ref for job in jobs if job.ref is not None]
        if refs:
            # XCLAIM to ourselves resets the entries' idle time (JUSTID: no
            # delivery count change, nothing sent back but ids).
            await self.redis.xclaim(self.key, self.group, self.consumer, 0, refs, justid=True)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _claim(self, limit: int) -> list[Job]:
        """Entries other processes took and left idle for ``claim_idle`` (every half of it)."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        cursor, entries, *_ = await self.redis.xautoclaim(
            self.key,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=limit,
        )
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self._claim_cursor == "0-0":
            # A full pass: nothing more idle now; look again in half the idle time.
            self._next_claim = now + self.claim_idle_ms / 2000
            await self._forget_gone_consumers()
        jobs = [self._job(ref, fields) for ref, fields in entries if fields]
        if jobs:
            log.info("claimed %d webhook deliveries of a process gone silent", len(jobs))
        return jobs

    async def _forget_gone_consumers(self) -> None:
        """Delete the consumers of processes long gone, so restarts do not pile them up.

        Only those holding nothing: a consumer's pending entries would be lost
        with it. A living process reads every second, so it is never this idle;
        one deleted by mistake is made again by its next read, holding nothing.
        """
        consumers: Any = await self.redis.xinfo_consumers(self.key, self.group)
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            if (
                name != self.consumer
                and consumer["pending"] == 0
                and consumer["idle"] > GONE_AFTER_MS
            ):
                await self.redis.xgroup_delconsumer(self.key, self.group, name)

    async def _read(self, limit: int, wait: float) -> list[Job]:
        # BLOCK stays below the client's socket time-out (2 s), or a quiet
        # stream would look like a frozen Redis.
        block = int(min(wait, 1.0) * 1000) if wait > 0 else None
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.key: ">"}, count=limit, block=block
        )
        return [self._job(ref, fields) for _, entries in reply or [] for ref, fields in entries]

    @staticmethod
    def _job(ref: bytes | str, fields: dict[bytes, bytes]) -> Job:
        url, event_id, type_, ts, body = (fields[name] for name in _FIELDS)
        return Job(
            url.decode(),
            event_id.decode(),
            type_.decode(),
            int(ts),
            body,
            ref=ref.decode() if isinstance(ref, bytes) else ref,
        )
