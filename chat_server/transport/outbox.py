"""The bus's outbox: messages for other processes, published in order by one task.

A handler never waits on Redis to publish: ``Outbox.put`` only queues. One
task drains the queue in pipelined batches; a batch that fails goes back to
the front and is tried again after a short back-off (doubling to
``MAX_BACKOFF``) while Redis is away, so nothing is dropped unless the queue
outgrows its byte limit, and what is dropped then (the oldest first) is
counted. Each message carries its sender's sequence number (``bus.py``),
so a batch half-published before a failure is not delivered twice.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

from chat_server.core.metrics import Metrics

__all__ = ["FIRST_BACKOFF", "MAX_BACKOFF", "PUBLISH_BATCH", "Batch", "Outbox"]

log = logging.getLogger(__name__)

#: Messages sent to Redis in one pipelined round trip at most.
PUBLISH_BATCH = 256
#: Ceiling of the back-off between attempts to publish.
MAX_BACKOFF = 2.0
FIRST_BACKOFF = 0.05

#: Queued messages: (payload, its size in bytes, the channels it goes on).
Batch = list[tuple[str, int, tuple[str, ...]]]


class Outbox:
    """Messages waiting for Redis, bounded in bytes.

    :param send: publishes one batch (raises if Redis did not take it all).
    :param reset: called after a failed batch, before the back-off (a fresh
        client for the next attempt).
    :param metrics: pending, failures and drops are counted here.
    :param limit: bytes of payload held at most.
    """

    def __init__(
        self,
        send: Callable[[Batch], Awaitable[None]],
        reset: Callable[[], Awaitable[None]],
        metrics: Metrics,
        limit: int,
    ) -> None:
        self.send = send
        self.reset = reset
        self.metrics = metrics
        self.limit = limit
        self._queue: collections.deque[tuple[str, int, tuple[str, ...]]] = collections.deque()
        self._bytes = 0
        self._wakeup: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None

    def put(self, payload: str, channels: tuple[str, ...]) -> None:
        """Queue ``payload`` for ``channels``; the oldest go if the limit would be passed."""
        size = len(payload)
        while self._queue and self._bytes + size > self.limit:
            _, dropped, _ = self._queue.popleft()
            self._bytes -= dropped
            self.metrics.redis_publish_dropped.inc()
            log.warning("Redis outbox full: dropped the oldest message for other processes")
        self._queue.append((payload, size, channels))
        self._bytes += size
        self.metrics.redis_publish_pending.set(len(self._queue))
        if self.task is None or self.task.done():
            self._wakeup = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._run())
        assert self._wakeup is not None
        self._wakeup.set()

    async def _run(self) -> None:
        assert self._wakeup is not None
        backoff, failing = FIRST_BACKOFF, False
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(PUBLISH_BATCH, len(self._queue)))]
            try:
                await self.send(batch)
            except asyncio.CancelledError:
                self._queue.extendleft(reversed(batch))
                raise
            except Exception as exc:  # every failure is retried, none is fatal
                self._queue.extendleft(reversed(batch))
                self.metrics.redis_publish_failures.inc()
                if not failing:
                    log.warning("cannot publish to Redis (%s); holding messages", exc)
                    failing = True
                await self.reset()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self._bytes -= sum(size for _, size, _ in batch)
            self.metrics.redis_publish_pending.set(len(self._queue))
            if failing:
                log.info("publishing to Redis again")
                failing = False
            backoff = FIRST_BACKOFF
