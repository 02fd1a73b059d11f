"""The room registry, memory and Redis, held to the same behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from chat_server.core.ports import RoomAccess, Rooms
from chat_server.stores.rooms import MemoryRooms, RedisRooms

MakeRooms = Callable[[], Rooms]

NOW = 1_700_000_000_000


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_rooms(request: pytest.FixtureRequest) -> MakeRooms:
    if request.param == "memory":
        shared = MemoryRooms()
        return lambda: shared
    client = request.getfixturevalue("redis_client")
    return lambda: RedisRooms(client)


async def create(rooms: Rooms, room: str = "team", private: bool = True) -> None:
    assert await rooms.create(room, "olga", private=private, topic="plans", created_ts=NOW)


async def test_a_created_room_has_its_owner_as_only_member(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    created = await rooms.create("team", "olga", private=True, topic="plans", created_ts=NOW)
    assert created is not None
    assert created == await rooms.state("team")
    assert (created.owner, created.private, created.topic) == ("olga", True, "plans")
    assert created.created_ts == NOW
    assert created.members == {"olga"} and created.moderators == frozenset()


async def test_a_room_is_created_once(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms)
    assert await rooms.create("team", "mallory", private=False, topic="", created_ts=NOW) is None
    state = await rooms.state("team")
    assert state is not None and state.owner == "olga" and state.private is True


async def test_racing_creations_leave_exactly_one_owner(make_rooms: MakeRooms) -> None:
    registries = [make_rooms() for _ in range(8)]
    answers = await asyncio.gather(
        *(
            r.create("race", f"user{i}", private=False, topic="", created_ts=NOW)
            for i, r in enumerate(registries)
        )
    )
    winners = [a for a in answers if a is not None]
    assert len(winners) == 1
    state = await registries[0].state("race")
    assert state is not None and state.owner == winners[0].owner


async def test_a_room_nobody_created_has_no_state(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    assert await rooms.state("lobby") is None
    assert await rooms.access("lobby", "alice", NOW) == RoomAccess(False, False, False, None)
    assert await rooms.set_topic("lobby", "x") is False
    assert await rooms.add_member("lobby", "alice") is False
    assert await rooms.set_moderator("lobby", "alice", True) is False
    assert await rooms.state("lobby") is None


async def test_access_says_member_and_private_in_one_read(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms)
    assert await rooms.access("team", "olga", NOW) == RoomAccess(True, True, True, None)
    assert await rooms.access("team", "bob", NOW) == RoomAccess(True, True, False, None)
    await rooms.add_member("team", "bob")
    assert (await rooms.access("team", "bob", NOW)).member is True


async def test_topic_members_and_moderators_change(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms)
    assert await rooms.set_topic("team", "new")
    assert await rooms.add_member("team", "bob")
    assert await rooms.set_moderator("team", "carol", True)
    state = await rooms.state("team")
    assert state is not None and state.topic == "new"
    assert state.members == {"olga", "bob", "carol"} and state.moderators == {"carol"}
    assert await rooms.set_moderator("team", "carol", False)
    await rooms.remove_member("team", "bob")
    state = await rooms.state("team")
    assert state is not None
    assert state.members == {"olga", "carol"} and state.moderators == frozenset()


async def test_removing_a_moderator_takes_the_role_too(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms)
    await rooms.set_moderator("team", "carol", True)
    await rooms.remove_member("team", "carol")
    state = await rooms.state("team")
    assert state is not None and "carol" not in state.members | state.moderators


async def test_the_owner_is_never_removed_nor_given_a_role(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms)
    await rooms.remove_member("team", "olga")
    assert await rooms.set_moderator("team", "olga", True) is False
    state = await rooms.state("team")
    assert state is not None and state.members == {"olga"} and state.moderators == frozenset()


async def test_a_ban_holds_until_its_time_then_lapses(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await rooms.ban("team", "troll", NOW + 1000)
    assert (await rooms.access("team", "troll", NOW)).ban_until == NOW + 1000
    assert await rooms.bans("team", NOW) == {"troll": NOW + 1000}
    assert (await rooms.access("team", "troll", NOW + 1000)).ban_until is None
    assert await rooms.bans("team", NOW + 1000) == {}
    assert await rooms.unban("team", "troll") is False


async def test_a_ban_without_end_holds_until_unbanned(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms)
    await rooms.ban("team", "troll", 0)
    assert (await rooms.access("team", "troll", NOW * 2)).ban_until == 0
    assert await rooms.bans("team", NOW * 2) == {"troll": 0}
    assert await rooms.unban("team", "troll") is True
    assert (await rooms.access("team", "troll", NOW)).ban_until is None


async def test_a_new_ban_replaces_the_old(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await rooms.ban("team", "troll", 0)
    await rooms.ban("team", "troll", NOW + 5)
    assert await rooms.bans("team", NOW) == {"troll": NOW + 5}


async def test_rooms_do_not_share_state(make_rooms: MakeRooms) -> None:
    rooms = make_rooms()
    await create(rooms, "a")
    await rooms.ban("a", "troll", 0)
    await rooms.add_member("a", "bob")
    assert await rooms.access("b", "troll", NOW) == RoomAccess(False, False, False, None)
    await create(rooms, "b")
    assert (await rooms.access("b", "bob", NOW)).member is False


@pytest.mark.redis
async def test_redis_rooms_keep_one_room_in_one_hash_slot(redis_client: aioredis.Redis) -> None:
    rooms = RedisRooms(redis_client)
    await create(rooms, "x{y}")
    await rooms.ban("x{y}", "troll", 0)
    keys = sorted(
        k if isinstance(k, str) else k.decode() for k in await redis_client.keys("chat:*")
    )
    assert keys == ["chat:{room:x{y}}:b", "chat:{room:x{y}}:m", "chat:{room:x{y}}:s"]


@pytest.mark.redis
async def test_redis_rooms_outlive_every_client(redis_url: str) -> None:
    first = aioredis.Redis.from_url(redis_url)
    try:
        rooms = RedisRooms(first)
        await create(rooms)
        await rooms.set_moderator("team", "carol", True)
        await rooms.ban("team", "troll", 0)
        before = await rooms.state("team")
    finally:
        await first.aclose()
    second = aioredis.Redis.from_url(redis_url)
    try:
        again = RedisRooms(second)
        assert await again.state("team") == before
        assert await again.bans("team", NOW) == {"troll": 0}
    finally:
        await second.aclose()
