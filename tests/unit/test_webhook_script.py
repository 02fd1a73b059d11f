"""A message's webhook event queued by the script that stores it (one real Redis).

``RedisHistory`` given the webhook stream writes the event in the same step
as the message; ``RedisWebhookQueue`` must read it exactly as if
``Webhooks.notify`` had queued it.
"""

from __future__ import annotations

import json
import uuid

import pytest
import redis.asyncio as aioredis

from chat_server.core.metrics import Metrics
from chat_server.core.ports import HookEvent, Job, Publication
from chat_server.core.webhooks import Webhooks
from chat_server.stores.history import RedisHistory
from chat_server.stores.keys import KeyLayout
from chat_server.stores.webhooks import RedisWebhookQueue

pytestmark = pytest.mark.redis

URLS = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")


@pytest.fixture
def stream() -> str:
    return f"test-hooks-{uuid.uuid4().hex}"


@pytest.fixture
def history(redis_client: aioredis.Redis, stream: str) -> RedisHistory:
    return RedisHistory(redis_client, 100, hook_stream=stream, hook_cap=1000)


@pytest.fixture
def queue(redis_client: aioredis.Redis, stream: str) -> RedisWebhookQueue:
    return RedisWebhookQueue(redis_client, key=stream)


def hook(urls: tuple[str, ...] = URLS) -> HookEvent:
    return HookEvent("message", uuid.uuid4().hex, urls)


def room() -> str:
    return f"room-{uuid.uuid4().hex}"


async def test_an_appended_message_queues_one_job_per_url_with_the_event_of_that_message(
    history: RedisHistory, queue: RedisWebhookQueue
) -> None:
    event = hook()
    message = await history.append(room(), {"room": "r", "from": "ann", "text": "hé"}, None, event)
    jobs = await queue.take(10, wait=0)
    assert event.queued == 2
    assert [(j.url, j.event_id, j.type, j.ts) for j in jobs] == [
        (url, event.event_id, "message", message["ts"]) for url in URLS
    ]
    assert json.loads(jobs[0].body) == {
        "id": event.event_id,
        "type": "message",
        "ts": message["ts"],
        "data": message,
    }


async def test_the_queued_body_is_byte_for_byte_what_notify_would_queue(
    redis_client: aioredis.Redis, history: RedisHistory, queue: RedisWebhookQueue
) -> None:
    event = hook(URLS[:1])
    record = {"room": "r", "from": "ann", "text": 'ü "quoted" \\ \n', "client_id": "c1"}
    message = await history.append(room(), record, None, event)
    script_job = (await queue.take(1, wait=0))[0]
    own = RedisWebhookQueue(redis_client, key=f"{queue.key}-notify")
    webhooks = Webhooks(own, URLS[:1], ["message"])
    await webhooks.notify("message", message)
    notify_job = (await own.take(1, wait=0))[0]
    envelope = json.loads(notify_job.body)
    expected = notify_job.body.replace(
        f'"id":"{envelope["id"]}","type":"message","ts":{envelope["ts"]}'.encode(),
        f'"id":"{event.event_id}","type":"message","ts":{message["ts"]}'.encode(),
    )
    assert script_job.body == expected


async def test_a_replayed_idempotent_send_queues_nothing_more(
    history: RedisHistory, queue: RedisWebhookQueue
) -> None:
    key, record = room(), {"room": "r", "from": "ann", "text": "once"}
    first, second = hook(), hook()
    await history.append_once(key, record, "k1:ann", None, first)
    _, replayed = await history.append_once(key, record, "k1:ann", None, second)
    assert replayed is True
    assert (first.queued, second.queued) == (2, 0)
    assert len(await queue.take(10, wait=0)) == 2


async def test_an_idempotent_send_with_a_hook_is_still_remembered_under_its_key(
    history: RedisHistory,
) -> None:
    key, record = room(), {"room": "r", "from": "ann", "text": "once"}
    stored, _ = await history.append_once(key, record, "k2:ann", None, hook())
    again, replayed = await history.append_once(key, record, "k2:ann", None, None)
    assert (again["id"], replayed) == (stored["id"], True)


async def test_a_send_without_a_hook_queues_nothing(
    history: RedisHistory, queue: RedisWebhookQueue
) -> None:
    await history.append(room(), {"room": "r", "from": "ann", "text": "quiet"})
    assert await queue.take(10, wait=0) == []


async def test_the_event_is_queued_in_the_step_that_publishes_the_message(
    redis_client: aioredis.Redis, history: RedisHistory, queue: RedisWebhookQueue
) -> None:
    channel = f"test-channel-{uuid.uuid4().hex}"
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    publication = Publication((channel,), '{"m":', "}")
    message = await history.append(
        room(), {"room": "r", "from": "a", "text": "x"}, publication, hook()
    )
    heard = await pubsub.get_message(timeout=1)
    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.aclose unannotated
    assert heard is not None
    assert json.loads(heard["data"])["m"] == message
    assert [json.loads(j.body)["data"] for j in await queue.take(10, wait=0)] == [message] * 2


async def test_the_stream_stays_near_its_cap(redis_client: aioredis.Redis, stream: str) -> None:
    capped = RedisHistory(redis_client, 100, hook_stream=stream, hook_cap=10)
    for _ in range(300):
        await capped.append(room(), {"room": "r", "from": "a", "text": "x"}, None, hook(URLS[:1]))
    # MAXLEN ~ trims whole macro nodes (100 entries by default), never below the cap.
    assert 10 <= await redis_client.xlen(stream) <= 200


async def test_a_stream_key_holding_something_else_stores_the_message_and_queues_nothing(
    redis_client: aioredis.Redis, stream: str
) -> None:
    await redis_client.set(stream, "not a stream")
    history = RedisHistory(redis_client, 100, hook_stream=stream)
    key, event = room(), hook()
    message = await history.append(key, {"room": "r", "from": "a", "text": "kept"}, None, event)
    assert event.queued == 0
    assert [m["id"] for m in await history.latest(key, 5)] == [message["id"]]


async def test_what_the_store_could_not_queue_is_counted_dropped() -> None:
    metrics = Metrics()
    webhooks = Webhooks(_NoQueue(), URLS, ["message"], metrics)
    event = webhooks.prepare("message")
    assert event is not None
    event.queued = 1
    webhooks.queued(event)
    sample = metrics.registry.get_sample_value
    assert sample("chat_webhook_queued_total", {"type": "message"}) == 1
    assert sample("chat_webhook_dropped_total", {"reason": "unavailable"}) == 1


def test_no_event_is_prepared_for_a_type_not_wanted() -> None:
    webhooks = Webhooks(_NoQueue(), URLS, ["presence"])
    assert webhooks.prepare("message") is None
    assert Webhooks(None, URLS, ["message"]).prepare("message") is None


def test_a_cluster_history_never_queues_hooks_itself(redis_client: aioredis.Redis) -> None:
    cluster_keys = KeyLayout(cluster=True)
    history = RedisHistory(redis_client, 100, cluster_keys, hook_stream="chat:webhooks")
    assert history.queues_hooks is False
    assert RedisHistory(redis_client, 100, hook_stream="chat:webhooks").queues_hooks is True
    assert RedisHistory(redis_client, 100).queues_hooks is False


class _NoQueue:
    """A queue nothing is put in: the store queued the events."""

    async def put(self, jobs: list[Job]) -> int:
        raise AssertionError("notify was not expected")

    async def take(self, limit: int, wait: float) -> list[Job]:
        return []

    async def done(self, jobs: list[Job]) -> None:
        return None

    async def keep(self, jobs: list[Job]) -> None:
        return None
