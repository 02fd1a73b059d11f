"""``WebhookWorker`` against a real receiver: batches pipelined per URL, under the cap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from chat_server.core.metrics import Metrics
from chat_server.core.ports import Job
from chat_server.core.webhooks import RetryPolicy
from chat_server.stores.webhooks import MemoryWebhookQueue
from chat_server.transport.hookclient import HookClient
from chat_server.transport.webhooks import WebhookWorker
from tests.support.health import wait_for
from tests.unit.test_hookclient import Seen, aiohttp_receiver

#: Retries fast enough for a test to wait them out.
POLICY = RetryPolicy(base=0.05, cap=0.1, max_age=30)


class Counting:
    """An aiohttp handler answering 200 (or 500 to the first ``fail`` requests), counting."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.in_flight = 0
        self.most_in_flight = 0
        self.ids: list[str] = []

    async def __call__(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if self.fail > 0:
                self.fail -= 1
                return web.Response(status=500)
            self.ids.append(request.headers["Chat-Webhook-Id"])
            return web.Response(text="ok")
        finally:
            self.in_flight -= 1


def jobs(url: str, n: int) -> list[Job]:
    return [Job(url, f"e{i}", "message", int(time.time() * 1000), b"{}") for i in range(n)]


@contextlib.asynccontextmanager
async def running(queue: MemoryWebhookQueue, concurrency: int) -> AsyncIterator[WebhookWorker]:
    client = HookClient(per_url=concurrency, timeout=2.0)
    worker = WebhookWorker(
        queue, client, secret="s", policy=POLICY, metrics=Metrics(), concurrency=concurrency
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)
        await client.aclose()


async def until(condition: Callable[[], bool]) -> None:
    async def check() -> bool:
        return condition()

    await wait_for(check, 10.0, interval=0.01)


@pytest.fixture
async def receiver_and_handler() -> AsyncIterator[tuple[str, Seen, Counting]]:
    handler = Counting()
    async with aiohttp_receiver(handler) as (url, seen):
        yield url, seen, handler


async def test_a_burst_to_one_url_is_delivered_once_each_over_few_connections_under_the_cap(
    receiver_and_handler: tuple[str, Seen, Counting],
) -> None:
    url, seen, handler = receiver_and_handler
    queue = MemoryWebhookQueue()
    async with running(queue, concurrency=3):
        await queue.put(jobs(url, 60))
        await until(lambda: len(handler.ids) == 60)
    assert sorted(handler.ids) == sorted(f"e{i}" for i in range(60))
    assert handler.most_in_flight <= 3
    assert len(set(seen.ports)) <= 3


async def test_a_failed_attempt_in_a_batch_is_retried_alone_and_lands() -> None:
    handler = Counting(fail=1)
    async with aiohttp_receiver(handler) as (url, _):
        queue = MemoryWebhookQueue()
        async with running(queue, concurrency=4):
            await queue.put(jobs(url, 5))
            await until(lambda: len(handler.ids) == 5)
    assert sorted(handler.ids) == [f"e{i}" for i in range(5)]


async def test_finished_jobs_are_reported_done_to_the_queue(
    receiver_and_handler: tuple[str, Seen, Counting],
) -> None:
    url, _, handler = receiver_and_handler
    queue = MemoryWebhookQueue(size=10)
    async with running(queue, concurrency=2):
        await queue.put(jobs(url, 10))
        await until(lambda: len(handler.ids) == 10)
        # Room again for ten: every delivered job was reported done.
        await until(lambda: queue._taken == 0)
        assert await queue.put(jobs(url, 10)) == 10
        await until(lambda: len(handler.ids) == 20)
