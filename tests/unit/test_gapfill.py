"""Filling a lost subscription's gap: which conversations are read, from where, and once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from chat_server.core import catchup
from chat_server.core.changes import Change
from chat_server.core.ids import format_id
from chat_server.core.metrics import Metrics
from chat_server.core.names import conversation_key
from chat_server.core.ports import Directory, Record
from chat_server.stores.directory import MemoryDirectory, RedisDirectory
from chat_server.stores.history import MemoryHistory
from chat_server.stores.keys import KeyLayout
from chat_server.transport.gapfill import GapFiller

Delivered = list[tuple[str, Any, Any]]


@pytest.fixture
def history() -> MemoryHistory:
    return MemoryHistory(100)


@pytest.fixture
def directory() -> MemoryDirectory:
    return MemoryDirectory()


@pytest.fixture
def filler(history: MemoryHistory, directory: MemoryDirectory) -> GapFiller:
    return GapFiller(catchup.finder(history, directory), Metrics())


async def room_message(history: MemoryHistory, room: str, text: str) -> Record:
    return await history.append(f"room:{room}", {"room": room, "from": "ann", "text": text})


async def private(history: MemoryHistory, directory: MemoryDirectory, text: str) -> Record:
    stored = await history.append(
        conversation_key("ann", "bob"), {"from": "ann", "to": "bob", "text": text}
    )
    await directory.touch("ann", "bob", stored["ts"])
    return stored


async def fill(filler: GapFiller, channels: list[str]) -> Delivered:
    delivered: Delivered = []

    async def deliver(event: str, data: dict[str, Any], to: str | list[str]) -> None:
        delivered.append((event, data["text"], to))

    await filler.fill(channels, deliver)
    return delivered


async def test_a_room_is_read_after_the_last_message_heard_of_it(
    filler: GapFiller, history: MemoryHistory
) -> None:
    heard = await room_message(history, "a", "heard")
    assert filler.hear("message", heard)
    await room_message(history, "a", "missed 1")
    await room_message(history, "a", "missed 2")
    assert await fill(filler, ["room:a"]) == [
        ("message", "missed 1", "room:a"),
        ("message", "missed 2", "room:a"),
    ]


async def test_a_room_never_heard_is_read_after_the_largest_id_heard_of_any(
    filler: GapFiller, history: MemoryHistory
) -> None:
    await room_message(history, "quiet", "older than anything heard")
    assert filler.hear("message", await room_message(history, "busy", "heard"))
    await room_message(history, "quiet", "missed")
    assert await fill(filler, ["room:quiet"]) == [("message", "missed", "room:quiet")]


async def test_a_room_forgotten_when_subscribed_anew_is_read_after_the_watermark(
    filler: GapFiller, history: MemoryHistory
) -> None:
    # Heard before its last local member left; messages stored while nobody
    # here listened reached the new joiner in its join history instead.
    assert filler.hear("message", await room_message(history, "a", "heard long ago"))
    await room_message(history, "a", "while nobody here listened")
    filler.forget("room:a")
    assert filler.hear("message", await room_message(history, "busy", "heard"))
    await room_message(history, "a", "missed")
    assert await fill(filler, ["room:a"]) == [("message", "missed", "room:a")]


async def test_before_anything_is_heard_the_subscription_time_is_the_mark(
    filler: GapFiller, history: MemoryHistory
) -> None:
    before = await room_message(history, "a", "before the subscription")
    filler.start(before["ts"] + 1)
    await asyncio.sleep(0.01)  # a later millisecond than the subscription's
    await room_message(history, "a", "missed")
    assert [text for _, text, _ in await fill(filler, ["room:a"])] == ["missed"]


async def test_nothing_is_read_before_the_first_subscription(filler: GapFiller) -> None:
    assert await fill(filler, ["room:a"]) == []


async def test_only_rooms_and_users_with_local_connections_are_read(
    filler: GapFiller, history: MemoryHistory
) -> None:
    filler.hear("message", await room_message(history, "a", "heard"))
    await room_message(history, "elsewhere", "not for this process")
    assert await fill(filler, ["room:a", "sid-group"]) == []


async def test_a_private_conversation_of_a_local_user_is_read_for_both_users(
    filler: GapFiller, history: MemoryHistory, directory: MemoryDirectory
) -> None:
    filler.hear("message", await room_message(history, "a", "heard"))
    await private(history, directory, "missed")
    assert await fill(filler, ["user:bob"]) == [
        ("private_message", "missed", ["user:bob", "user:ann"])
    ]


async def test_a_message_heard_after_it_was_filled_is_dropped(
    filler: GapFiller, history: MemoryHistory
) -> None:
    filler.hear("message", await room_message(history, "a", "heard"))
    missed = await room_message(history, "a", "missed")
    await fill(filler, ["room:a"])
    assert filler.hear("message", missed) is False


async def test_a_message_older_than_one_delivered_is_dropped(
    filler: GapFiller, history: MemoryHistory
) -> None:
    older = await room_message(history, "a", "older")
    assert filler.hear("message", await room_message(history, "a", "newer"))
    assert filler.hear("message", older) is False


async def test_events_without_a_message_id_always_pass(filler: GapFiller) -> None:
    assert filler.hear("typing", {"room": "a", "user": "ann"})
    assert filler.hear("presence", {"room": "a", "user": "ann", "action": "join"})


async def test_a_second_fill_reads_nothing_already_filled(
    filler: GapFiller, history: MemoryHistory
) -> None:
    filler.hear("message", await room_message(history, "a", "heard"))
    await room_message(history, "a", "missed")
    await fill(filler, ["room:a"])
    assert await fill(filler, ["room:a"]) == []


# -- the directory's recent partners, memory and Redis -----------------------------------


@pytest.fixture
async def redis_directory(redis_url: str) -> AsyncIterator[RedisDirectory]:
    client = aioredis.Redis.from_url(redis_url)
    yield RedisDirectory(client, KeyLayout(prefix=f"test:{uuid.uuid4().hex}:"))
    await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def any_directory(request: pytest.FixtureRequest) -> Directory:
    if request.param == "memory":
        return MemoryDirectory()
    found: Directory = request.getfixturevalue("redis_directory")
    return found


async def test_active_since_lists_partners_with_a_message_at_or_after_the_time(
    any_directory: Directory,
) -> None:
    await any_directory.touch("ann", "old", 1000)
    await any_directory.touch("ann", "edge", 2000)
    await any_directory.touch("ann", "new", 3000)
    assert await any_directory.active_since("ann", 2000, 10) == ["new", "edge"]


async def test_active_since_stops_at_the_limit(any_directory: Directory) -> None:
    for n in range(5):
        await any_directory.touch("ann", f"p{n}", 1000 + n)
    assert await any_directory.active_since("ann", 0, 2) == ["p4", "p3"]


def test_a_watermark_is_a_message_id() -> None:
    filler = GapFiller(catchup.finder(MemoryHistory(1), MemoryDirectory()), Metrics())
    filler.start(1234)
    assert filler.watermark == format_id(1234, 0)


async def test_a_change_missed_in_the_gap_is_filled_in_rev_order(
    filler: GapFiller, history: MemoryHistory
) -> None:
    heard = await room_message(history, "a", "heard")
    assert filler.hear("message", heard)
    await history.change("room:a", heard["id"], Change("edit", "ann", text="edited"))
    await room_message(history, "a", "missed")
    assert await fill(filler, ["room:a"]) == [
        ("message_updated", "edited", "room:a"),
        ("message", "missed", "room:a"),
    ]


async def test_a_change_filled_already_is_dropped_when_heard_again(
    filler: GapFiller, history: MemoryHistory
) -> None:
    heard = await room_message(history, "a", "heard")
    assert filler.hear("message", heard)
    changed = await history.change("room:a", heard["id"], Change("edit", "ann", text="x"))
    await fill(filler, ["room:a"])
    assert not filler.hear("message_updated", changed.message)
