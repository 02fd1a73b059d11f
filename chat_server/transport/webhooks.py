"""``WebhookWorker``: takes queued webhook events and POSTs them, signed, until they land.

Every process runs one. It holds at most ``max_held`` deliveries at a time
(in flight or waiting to retry); past that it stops taking, so a long outage
leaves the backlog in the queue (the Redis stream) rather than in this
process's memory. Each URL has its own cap on requests in flight, so one slow
receiver cannot starve the others; the attempts waiting for a URL go out
together, pipelined on one connection (``HookClient.post_many``), so a busy
chat pays one send and one receive per batch rather than per event.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from chat_server.core.metrics import Metrics
from chat_server.core.ports import Job, WebhookQueue
from chat_server.core.webhooks import RetryPolicy, sign
from chat_server.transport.hookclient import HookClient, HookError

__all__ = ["ATTEMPT_TIMEOUT", "MAX_HELD", "WebhookWorker"]

log = logging.getLogger(__name__)

#: Seconds a receiver has to answer one attempt (the contract's 5 s).
ATTEMPT_TIMEOUT = 5.0
#: Deliveries one process holds at most.
MAX_HELD = 10_000
#: Jobs taken from the queue in one go.
BATCH = 100
#: Seconds ``run()`` may spend, stopping, on reporting its last finished jobs.
FINAL_REPORT_TIMEOUT = 1.0
#: Seconds to wait before asking a queue that failed again (doubling to 5 s).
QUEUE_RETRY_FIRST, QUEUE_RETRY_MAX = 0.1, 5.0


class _Lane:
    """The attempts waiting for one URL, sent in pipelined batches.

    At most ``cap`` requests are in flight at once; whatever waits meanwhile
    goes in the next batch, as soon as answers make room.
    """

    def __init__(self, worker: WebhookWorker, url: str, cap: int) -> None:
        self.worker = worker
        self.url = url
        self.cap = cap
        self.in_flight = 0
        self.waiting: collections.deque[tuple[Job, asyncio.Future[bool]]] = collections.deque()
        self._scheduled = False

    def submit(self, job: Job) -> asyncio.Future[bool]:
        """Queue one attempt of ``job``; the future tells whether it landed."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((job, future))
        if not self._scheduled:
            # Sent on the next turn of the loop, with whatever else arrives
            # in this one (a batch taken from the queue, a burst of retries).
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)
        return future

    def _pump(self) -> None:
        self._scheduled = False
        batch: list[tuple[Job, asyncio.Future[bool]]] = []
        while self.waiting and self.in_flight + len(batch) < self.cap:
            job, future = self.waiting.popleft()
            if not future.done():  # done: its delivery was cancelled (stopping)
                batch.append((job, future))
        if batch:
            self.in_flight += len(batch)
            self.worker.spawn(self._send(batch))

    async def _send(self, batch: list[tuple[Job, asyncio.Future[bool]]]) -> None:
        results = [False] * len(batch)  # what a cancelled or failed batch counts as
        try:
            results = await self.worker.post(self.url, [job for job, _ in batch])
        except Exception:
            log.exception("webhook batch to %s failed; its jobs will be retried", self.url)
        finally:
            self.in_flight -= len(batch)
            for (_, future), landed in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(landed)
        self._pump()  # not reached when cancelled: the worker is stopping


class WebhookWorker:
    """Delivers webhook jobs from ``queue`` through ``client``.

    :param queue: where jobs wait (memory or Redis).
    :param client: the ``HookClient`` the POSTs go through (its time-out is
        the attempt's, ``ATTEMPT_TIMEOUT``).
    :param secret: the key of the ``Chat-Webhook-Signature``.
    :param policy: when to retry and when to give up.
    :param metrics: delivered, retried, dropped, latency and held count here.
    :param concurrency: requests in flight per URL (8).
    :param keep_every: seconds between two ``queue.keep`` of the held jobs;
        a third of the queue's claim idle time, so another process never
        claims a job this one is still working on.
    :param max_held: deliveries held at most (``MAX_HELD``).
    :param linger: seconds to wait after taking fewer jobs than asked, before
        asking again, so that a shared queue (Redis) is read in batches rather
        than one round trip per event; the jobs taken start at once.

    Finished jobs are reported to the queue together (``queue.done``), once
    per turn of the loop rather than once per job.
    """

    def __init__(
        self,
        queue: WebhookQueue,
        client: HookClient,
        *,
        secret: str,
        policy: RetryPolicy,
        metrics: Metrics,
        concurrency: int = 8,
        keep_every: float = 10.0,
        max_held: int = MAX_HELD,
        linger: float = 0.0,
    ) -> None:
        self.queue = queue
        self.client = client
        self.secret = secret
        self.policy = policy
        self.metrics = metrics
        self.concurrency = concurrency
        self.keep_every = keep_every
        self.max_held = max_held
        self.linger = linger
        self._finished: list[Job] = []
        self._finish = asyncio.Event()
        self._stopping = False
        self._held: dict[asyncio.Task[None], Job] = {}
        self._lanes: dict[str, _Lane] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        metrics.track(metrics.webhook_held, lambda: len(self._held))

    async def run(self) -> None:
        """Take and deliver jobs until ``stop()``; then stop every delivery and return.

        Deliveries cut short stay unfinished in the queue: in Redis, another
        process (or this one, restarted) claims them.
        """
        keeper = asyncio.create_task(self._keep_held())
        reporter = asyncio.create_task(self._report_finished())
        try:
            await self._take_forever()
        finally:
            tasks = [keeper, *self._held, *self._sending]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._stopping = True
            self._finish.set()
            # Bounded: what is not reported now is delivered again, at worst.
            await asyncio.wait([reporter], timeout=FINAL_REPORT_TIMEOUT)

    def stop(self) -> None:
        """Ask ``run()`` to return once the queue call in progress (at most ~1 s) ends.

        Not a cancellation: redis-py can lose a cancel that lands in a
        blocking read (XREADGROUP BLOCK), leaving the worker blocked forever.
        """
        self._stopping = True
        self._room.set()

    async def _take_forever(self) -> None:
        pause = QUEUE_RETRY_FIRST
        while not self._stopping:
            room = self.max_held - len(self._held)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                jobs = await self.queue.take(min(room, BATCH), wait=1.0)
            except Exception as exc:
                log.warning("could not take webhook events: %s", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, QUEUE_RETRY_MAX)
                continue
            pause = QUEUE_RETRY_FIRST
            for job in jobs:
                task = asyncio.create_task(self._deliver(job))
                self._held[task] = job
                task.add_done_callback(self._release)
            if self.linger and len(jobs) < min(room, BATCH) and not self._stopping:
                await asyncio.sleep(self.linger)

    def _release(self, task: asyncio.Task[None]) -> None:
        self._held.pop(task, None)
        self._room.set()

    async def _keep_held(self) -> None:
        while True:
            await asyncio.sleep(self.keep_every)
            try:
                await self.queue.keep(list(self._held.values()))
            except Exception as exc:
                log.warning("could not extend the claim on webhook events: %s", exc)

    async def _deliver(self, job: Job) -> None:
        """Attempt ``job`` until it lands or grows too old; then it is done either way."""
        while True:
            job.attempt += 1
            if await self._attempt(job):
                self.metrics.webhook_delivered.inc()
                self.metrics.webhook_latency.observe(max(0.0, time.time() - job.ts / 1000))
                break
            delay = self.policy.delay(job.attempt)
            if self.policy.gives_up(job, delay, int(time.time() * 1000)):
                log.warning(
                    "webhook event %s (%s) to %s dropped after %d attempts: older than %.0f s",
                    job.event_id,
                    job.type,
                    job.url,
                    job.attempt,
                    self.policy.max_age,
                )
                self.metrics.webhook_dropped.labels("max_age").inc()
                break
            self.metrics.webhook_retried.inc()
            await asyncio.sleep(delay)
        self._finished.append(job)
        self._finish.set()

    async def _report_finished(self) -> None:
        while True:
            await self._finish.wait()
            self._finish.clear()
            await self._report()
            if self._stopping:
                return

    async def _report(self) -> None:
        jobs, self._finished = self._finished, []
        if not jobs:
            return
        try:
            await self.queue.done(jobs)
        except Exception as exc:
            # Delivered (or given up) all the same; at worst another process
            # claims them later and the receiver sees their ids a second time.
            log.warning("could not mark %d webhook deliveries done: %s", len(jobs), exc)

    async def _attempt(self, job: Job) -> bool:
        """One signed POST; whether the receiver answered 2xx within ``ATTEMPT_TIMEOUT``."""
        lane = self._lanes.get(job.url)
        if lane is None:
            lane = self._lanes[job.url] = _Lane(self, job.url, self.concurrency)
        return await lane.submit(job)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a lane's batch as a task of this worker (cancelled when it stops)."""
        task = asyncio.create_task(coro)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def post(self, url: str, jobs: list[Job]) -> list[bool]:
        """Signed POSTs of ``jobs`` to ``url``, pipelined; whether each answered 2xx."""
        stamp = str(int(time.time()))
        requests = [
            (
                job.body,
                {
                    "Content-Type": "application/json",
                    "Chat-Webhook-Id": job.event_id,
                    "Chat-Webhook-Timestamp": stamp,
                    "Chat-Webhook-Signature": sign(self.secret, stamp, job.body),
                },
            )
            for job in jobs
        ]
        results = []
        for job, answer in zip(jobs, await self.client.post_many(url, requests), strict=True):
            ok = not isinstance(answer, HookError) and 200 <= answer < 300
            if not ok:
                reason = answer if isinstance(answer, HookError) else f"answered {answer}"
                log.debug("webhook %s to %s failed (%s)", job.event_id, url, reason)
            results.append(ok)
        return results
