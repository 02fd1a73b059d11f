"""Webhook signatures, the retry policy, and the two queues (memory and a real Redis)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest
import redis.asyncio as aioredis

from chat_server.core.ports import Job, WebhookQueue
from chat_server.core.webhooks import RetryPolicy, sign
from chat_server.stores.presence import MemoryPresence, RedisPresence
from chat_server.stores.webhooks import MemoryWebhookQueue, RedisWebhookQueue
from tests.unit.conftest import BACKENDS


def job(n: int = 0, ts: int = 0) -> Job:
    return Job("http://127.0.0.1:9/hook", f"event-{n}", "message", ts, b'{"n":%d}' % n)


@pytest.fixture(params=BACKENDS)
def queue(request: pytest.FixtureRequest) -> WebhookQueue:
    """A queue of 3 jobs at most: memory, then Redis."""
    if request.param == "memory":
        return MemoryWebhookQueue(3)
    return RedisWebhookQueue(request.getfixturevalue("redis_client"), size=3)


# -- signature and retry policy ---------------------------------------------------------


def test_the_signature_is_v1_and_the_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", b"{}") == f"v1={expected}"


def test_retry_delays_double_from_the_base_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(base=1, cap=60, max_age=3600)
    assert [policy.delay(n, rand=lambda: 0.0) for n in range(1, 9)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]


def test_jitter_takes_off_at_most_half_of_a_delay() -> None:
    policy = RetryPolicy(base=1, cap=60, max_age=3600)
    assert policy.delay(3, rand=lambda: 0.999999) == pytest.approx(2.0, abs=1e-4)


def test_the_policy_gives_up_when_the_next_attempt_would_pass_the_max_age() -> None:
    policy = RetryPolicy(base=1, cap=60, max_age=10)
    assert policy.gives_up(job(ts=0), delay=3, now_ms=8_000) is True
    assert policy.gives_up(job(ts=0), delay=1, now_ms=8_000) is False


# -- both queues --------------------------------------------------------------------------


async def test_a_queued_job_is_taken_as_it_was_put(queue: WebhookQueue) -> None:
    assert await queue.put([job(1, ts=123)]) == 1
    (taken,) = await queue.take(10, wait=0.5)
    assert (taken.url, taken.event_id, taken.type, taken.ts, taken.body) == (
        job(1).url,
        "event-1",
        "message",
        123,
        b'{"n":1}',
    )


async def test_taking_from_an_empty_queue_waits_then_gives_nothing(queue: WebhookQueue) -> None:
    assert await queue.take(10, wait=0.2) == []


async def test_a_taken_job_is_not_taken_again(queue: WebhookQueue) -> None:
    await queue.put([job(1)])
    assert len(await queue.take(10, wait=0.5)) == 1
    assert await queue.take(10, wait=0.2) == []


async def test_the_memory_queue_refuses_jobs_past_its_size_until_one_is_done() -> None:
    queue = MemoryWebhookQueue(3)
    assert await queue.put([job(n) for n in range(5)]) == 3
    taken = await queue.take(1, wait=0.1)
    assert await queue.put([job(9)]) == 0  # taken but not done still counts
    await queue.done(taken)
    assert await queue.put([job(9)]) == 1


# -- the Redis stream ---------------------------------------------------------------------


@pytest.mark.redis
async def test_a_job_left_idle_by_its_process_is_claimed_by_another(
    redis_client: aioredis.Redis,
) -> None:
    silent = RedisWebhookQueue(redis_client, claim_idle=0.2)
    other = RedisWebhookQueue(redis_client, claim_idle=0.2)
    await silent.put([job(1)])
    assert len(await silent.take(10, wait=0.5)) == 1
    assert await other.take(10, wait=0.1) == []
    await asyncio.sleep(0.3)
    (claimed,) = await other.take(10, wait=0.1)
    assert claimed.event_id == "event-1"


@pytest.mark.redis
async def test_a_job_its_process_keeps_is_not_claimed(redis_client: aioredis.Redis) -> None:
    holder = RedisWebhookQueue(redis_client, claim_idle=0.3)
    other = RedisWebhookQueue(redis_client, claim_idle=0.3)
    await holder.put([job(1)])
    held = await holder.take(10, wait=0.5)
    for _ in range(4):
        await asyncio.sleep(0.1)
        await holder.keep(held)
    assert await other.take(10, wait=0.1) == []


@pytest.mark.redis
async def test_the_consumer_of_a_process_long_gone_holding_nothing_is_deleted(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chat_server.stores.webhooks.GONE_AFTER_MS", 100)
    gone = RedisWebhookQueue(redis_client)
    holding = RedisWebhookQueue(redis_client)
    alive = RedisWebhookQueue(redis_client)
    await gone.put([job(1), job(2)])
    (done,) = await gone.take(1, wait=0.5)
    await gone.done([done])
    assert len(await holding.take(1, wait=0.5)) == 1
    await asyncio.sleep(0.2)  # both idle past GONE_AFTER_MS
    await alive.put([job(3)])
    assert len(await alive.take(1, wait=0.5)) == 1  # a consumer exists once it read
    names = {
        c["name"].decode() for c in await redis_client.xinfo_consumers(alive.key, alive.group)
    }
    assert names == {holding.consumer, alive.consumer}


@pytest.mark.redis
async def test_a_done_job_leaves_the_stream(redis_client: aioredis.Redis) -> None:
    queue = RedisWebhookQueue(redis_client)
    await queue.put([job(1)])
    (taken,) = await queue.take(10, wait=0.5)
    await queue.done([taken])
    assert await redis_client.xlen(queue.key) == 0
    assert (await redis_client.xpending(queue.key, queue.group))["pending"] == 0


@pytest.mark.redis
async def test_the_stream_is_trimmed_near_its_size(redis_client: aioredis.Redis) -> None:
    queue = RedisWebhookQueue(redis_client, size=10)
    for start in range(0, 1000, 100):
        await queue.put([job(n) for n in range(start, start + 100)])
    # MAXLEN ~ trims whole nodes of the stream (100 entries by default).
    assert await redis_client.xlen(queue.key) <= 10 + 100


@pytest.mark.redis
async def test_a_queue_whose_group_vanished_makes_it_again(redis_client: aioredis.Redis) -> None:
    queue = RedisWebhookQueue(redis_client)
    await queue.take(1, wait=0.1)
    await redis_client.flushall()  # a Redis restarted without persistence
    assert await queue.take(1, wait=0.1) == []
    await queue.put([job(1)])
    assert len(await queue.take(1, wait=0.5)) == 1


# -- who is online ------------------------------------------------------------------------


async def test_memory_presence_tells_one_user_present_without_listing_the_room() -> None:
    presence = MemoryPresence()
    await presence.add(":online", "alice")
    assert [await presence.present(":online", u) for u in ("alice", "bob")] == [True, False]


@pytest.mark.redis
async def test_redis_presence_tells_a_user_present_on_another_process(
    redis_client: aioredis.Redis,
) -> None:
    here, there = RedisPresence(redis_client), RedisPresence(redis_client)
    await there.add(":online", "alice")
    assert [await here.present(":online", u) for u in ("alice", "bob")] == [True, False]
    await there.remove(":online", "alice")
    assert await here.present(":online", "alice") is False
