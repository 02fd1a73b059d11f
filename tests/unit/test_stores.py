"""The history and presence stores, memory and Redis, held to the same behaviour."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from chat_server.core.ids import ID_PATTERN, format_id
from chat_server.stores.history import History
from chat_server.stores.presence import MemoryPresence, RedisPresence
from tests.support.redis import RedisServer
from tests.unit.conftest import MakeHistory


async def fill(history: History, key: str, n: int) -> list[str]:
    return [(await history.append(key, {"text": str(i)}))["id"] for i in range(n)]


async def test_append_returns_the_record_with_id_and_ts(make_history: MakeHistory) -> None:
    stored = await make_history(10).append("room:a", {"room": "a", "text": "hi"})
    assert ID_PATTERN.match(stored["id"])
    assert stored["ts"] == int(stored["id"].split("-")[0])
    assert stored["room"] == "a" and stored["text"] == "hi"


async def test_ids_are_unique_across_conversations(make_history: MakeHistory) -> None:
    history = make_history(10)
    ids = [(await history.append(f"room:{i % 3}", {"text": "x"}))["id"] for i in range(30)]
    assert len(set(ids)) == 30


async def test_ids_sort_in_the_order_messages_were_stored(make_history: MakeHistory) -> None:
    ids = await fill(make_history(100), "room:a", 50)
    assert ids == sorted(ids)
    assert len({len(i) for i in ids}) == 1


async def test_latest_returns_the_newest_oldest_first(make_history: MakeHistory) -> None:
    history = make_history(100)
    ids = await fill(history, "room:a", 10)
    assert [m["id"] for m in await history.latest("room:a", 3)] == ids[-3:]


async def test_history_keeps_only_the_configured_number(make_history: MakeHistory) -> None:
    history = make_history(5)
    ids = await fill(history, "room:a", 12)
    assert [m["id"] for m in await history.latest("room:a", 50)] == ids[-5:]


async def test_before_pages_backwards(make_history: MakeHistory) -> None:
    history = make_history(100)
    ids = await fill(history, "room:a", 10)
    page = await history.before("room:a", ids[6], 4)
    assert [m["id"] for m in page] == ids[2:6]


async def test_after_returns_everything_newer_and_recovered(make_history: MakeHistory) -> None:
    history = make_history(100)
    ids = await fill(history, "room:a", 10)
    page = await history.after("room:a", ids[3])
    assert [m["id"] for m in page.messages] == ids[4:]
    assert page.recovered is True


async def test_after_the_last_trimmed_id_is_still_recovered(make_history: MakeHistory) -> None:
    history = make_history(5)
    ids = await fill(history, "room:a", 8)
    page = await history.after("room:a", ids[2])
    assert [m["id"] for m in page.messages] == ids[3:]
    assert page.recovered is True


async def test_after_an_id_older_than_what_is_kept_is_not_recovered(
    make_history: MakeHistory,
) -> None:
    history = make_history(5)
    ids = await fill(history, "room:a", 8)
    page = await history.after("room:a", ids[1])
    assert [m["id"] for m in page.messages] == ids[3:]
    assert page.recovered is False


async def test_an_unknown_conversation_is_empty(make_history: MakeHistory) -> None:
    history = make_history(5)
    assert await history.latest("room:none", 50) == []
    page = await history.after("room:none", format_id(1, 1))
    assert page.messages == [] and page.recovered is True


async def test_memory_presence_reports_first_and_last() -> None:
    presence = MemoryPresence()
    assert await presence.add("lobby", "bob") is True
    assert await presence.add("lobby", "alice") is True
    assert await presence.members("lobby") == ["alice", "bob"]
    assert await presence.remove("lobby", "bob") is True
    assert await presence.remove("lobby", "bob") is False
    assert await presence.members("lobby") == ["alice"]


@pytest.mark.redis
async def test_redis_presence_counts_a_user_once_across_processes(
    redis_client: aioredis.Redis,
) -> None:
    first, second = RedisPresence(redis_client), RedisPresence(redis_client)
    assert await first.add("lobby", "alice") is True
    assert await second.add("lobby", "alice") is False
    assert await first.members("lobby") == ["alice"]
    assert await first.remove("lobby", "alice") is False
    assert await second.remove("lobby", "alice") is True
    assert await first.members("lobby") == []


@pytest.mark.redis
async def test_redis_presence_forgets_a_process_that_stops_refreshing(
    redis_client: aioredis.Redis,
) -> None:
    dead, alive = RedisPresence(redis_client, ttl=0.3), RedisPresence(redis_client, ttl=0.3)
    await dead.add("lobby", "ghost")
    await alive.add("lobby", "carol")
    for _ in range(4):
        await asyncio.sleep(0.15)
        await alive.refresh()
    assert await alive.members("lobby") == ["carol"]


@pytest.mark.redis
async def test_redis_presence_sees_a_user_back_after_their_process_died(
    redis_client: aioredis.Redis,
) -> None:
    dead, alive = RedisPresence(redis_client, ttl=0.2), RedisPresence(redis_client, ttl=0.2)
    await dead.add("lobby", "alice")
    await asyncio.sleep(0.3)
    assert await alive.add("lobby", "alice") is True


@pytest.mark.redis
async def test_redis_presence_leaves_no_keys_behind(redis_client: aioredis.Redis) -> None:
    presence = RedisPresence(redis_client)
    await presence.add("lobby", "alice")
    await presence.add("kitchen", "alice")
    await presence.forget_all()
    assert await redis_client.keys("chat:p*") == []


@pytest.mark.redis
async def test_redis_presence_undoes_an_add_that_timed_out_but_ran_late(
    fresh_redis: RedisServer,
) -> None:
    impatient = aioredis.Redis.from_url(fresh_redis.url, socket_timeout=0.3)
    observer = aioredis.Redis.from_url(fresh_redis.url)
    presence = RedisPresence(impatient, ttl=30)
    try:
        await presence.add("kitchen", "bob")  # loads the script, so the late call can run
        fresh_redis.pause()
        try:
            with pytest.raises(redis.exceptions.TimeoutError):
                await presence.add("lobby", "alice")
        finally:
            fresh_redis.resume()
        # The late add ran once Redis woke; the settling removal follows it.
        await asyncio.sleep(1.5)
        assert await observer.exists("chat:pu:lobby:alice") == 0
        assert await RedisPresence(observer).members("lobby") == []
        assert await RedisPresence(observer).members("kitchen") == ["bob"]
    finally:
        await impatient.aclose()
        await observer.aclose()
