"""Webhooks across processes: one delivery per event, and nothing acked lost to a kill.

Every process runs a delivery worker on one Redis stream; the receiver is a
real aiohttp server in the test.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support.chat import expect_ok, http_call, unique
from tests.support.fixtures import Connect, StartProcesses
from tests.support.health import wait_for
from tests.support.process import ServerProcess
from tests.support.redis import RedisServer, require_redis_binary
from tests.support.settings import API_KEY
from tests.support.webhooks import HOOK_SECRET, Receiver, receiver

pytestmark = pytest.mark.redis

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def hooks() -> AsyncIterator[Receiver]:
    async with receiver() as hooks:
        yield hooks


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    require_redis_binary()
    server = RedisServer(persistent=True)
    server.start()
    yield server
    server.close()


def hook_env(hooks: Receiver) -> dict[str, str]:
    """Webhooks to ``hooks`` with retries and claims quick enough for a test."""
    return {
        "CHAT_WEBHOOK_URL": hooks.url,
        "CHAT_WEBHOOK_SECRET": HOOK_SECRET,
        "CHAT_WEBHOOK_RETRY_BASE": "0.1",
        "CHAT_WEBHOOK_RETRY_CAP": "0.5",
        "CHAT_WEBHOOK_CLAIM_IDLE": "1",
    }


async def emit_to_room(http: aiohttp.ClientSession, proc: ServerProcess, n: int) -> list[str]:
    """``n`` REST emits to a fresh room through ``proc``; the acked ids."""
    room = unique("room")
    ids = []
    for i in range(n):
        status, body = await http_call(
            http, "POST", f"{proc.url}/api/emit", {"room": room, "text": f"m{i}"}, AUTH
        )
        assert status == 200, body
        ids.append(body["id"])
    return ids


def delivered_ids(hooks: Receiver) -> collections.Counter[str]:
    """How often each message id reached the receiver with a 2xx answer."""
    return collections.Counter(e["data"]["id"] for e in hooks.events("message"))


async def test_two_processes_deliver_each_event_once(
    server_processes: StartProcesses, hooks: Receiver, http: aiohttp.ClientSession
) -> None:
    one, two = await server_processes(2, env=hook_env(hooks))
    ids = await emit_to_room(http, one, 15) + await emit_to_room(http, two, 15)
    await hooks.until(lambda: set(delivered_ids(hooks)) == set(ids), timeout=20)
    await asyncio.sleep(1.5)  # past a claim idle time: no second delivery comes
    assert delivered_ids(hooks) == collections.Counter(ids)
    assert len(hooks.attempts) == len(ids)


async def test_recipient_online_counts_a_connection_on_another_process(
    server_processes: StartProcesses, hooks: Receiver, connect: Connect
) -> None:
    one, two = await server_processes(2, env=hook_env(hooks))
    bob_name = unique("bob")
    await connect(two.url, bob_name)
    alice = await connect(one.url, unique("alice"))
    expect_ok(await alice.call("private_message", {"to": bob_name, "text": "hi"}))
    data = (await hooks.next_event("private_message"))["data"]
    assert (data["to"], data["recipient_online"]) == (bob_name, True)


async def test_events_held_by_a_killed_process_are_delivered_by_the_other(
    server_processes: StartProcesses, hooks: Receiver, http: aiohttp.ClientSession
) -> None:
    hooks.status = 500
    (doomed,) = await server_processes(1, env=hook_env(hooks))
    ids = await emit_to_room(http, doomed, 10)
    # Every event has been taken, and is being retried, by the doomed process.
    await hooks.until(lambda: len({d.event["id"] for d in hooks.attempts}) == 10)
    (survivor,) = await server_processes(1, env=hook_env(hooks))
    doomed.kill()
    hooks.status = 200
    await hooks.until(lambda: set(delivered_ids(hooks)) == set(ids), timeout=20)
    assert survivor.running


async def test_events_acked_before_redis_restarted_are_all_delivered(
    server_processes: StartProcesses,
    persistent_redis: RedisServer,
    hooks: Receiver,
    http: aiohttp.ClientSession,
) -> None:
    hooks.status = 500
    env = hook_env(hooks)
    (first,) = await server_processes(1, env=env, redis_url=persistent_redis.url)
    ids = await emit_to_room(http, first, 10)
    await hooks.until(lambda: len({d.event["id"] for d in hooks.attempts}) == 10)
    persistent_redis.kill()
    # The process holding them dies too, so only what Redis kept can bring them.
    first.kill()
    persistent_redis.start()
    hooks.status = 200
    (second,) = await server_processes(1, env=env, redis_url=persistent_redis.url)
    await hooks.until(lambda: set(delivered_ids(hooks)) == set(ids), timeout=20)
    client = aioredis.Redis.from_url(persistent_redis.url)

    async def none_pending() -> bool:
        return bool((await client.xpending("chat:webhooks", "webhooks"))["pending"] == 0)

    try:
        await wait_for(none_pending, 5)  # each delivery acknowledged in the restored group
    finally:
        await client.aclose()
    assert second.running
