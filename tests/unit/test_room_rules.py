"""The room rules over the memory registry: refusals and their codes, and what changes."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from chat_server.core.errors import ChatError
from chat_server.core.rooms import Actor, RoomRules
from chat_server.stores.rooms import MemoryRooms

OWNER, MOD, MEMBER, OUTSIDER, ADMIN = (
    Actor("olga"),
    Actor("mia"),
    Actor("bob"),
    Actor("eve"),
    Actor("root", admin=True),
)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def rules(clock: Clock) -> RoomRules:
    rules = RoomRules(MemoryRooms(), clock)
    await rules.create("team", "olga", private=True, topic="plans", in_use=False)
    await rules.set_role("team", OWNER, "mia", "moderator")
    await rules.invite("team", MOD, "bob")
    return rules


async def code_of(call: Awaitable[object]) -> str:
    """The code of the ``ChatError`` that ``call`` raises (failing if it raises none)."""
    with pytest.raises(ChatError) as caught:
        await call
    return caught.value.code


async def test_create_answers_the_info_with_the_caller_as_owner(clock: Clock) -> None:
    rules = RoomRules(MemoryRooms(), clock)
    info = await rules.create("team", "olga", private=True, topic="t", in_use=False)
    assert info == {
        "name": "team",
        "private": True,
        "topic": "t",
        "owner": "olga",
        "moderators": [],
        "created_ts": clock.ms,
        "members": ["olga"],
    }


async def test_a_room_is_created_once_and_never_over_one_in_use(rules: RoomRules) -> None:
    assert await code_of(rules.create("team", "eve", private=False, topic="", in_use=False)) == (
        "room_exists"
    )
    assert await code_of(rules.create("lobby", "eve", private=False, topic="", in_use=True)) == (
        "room_exists"
    )


async def test_a_room_nobody_created_is_public_and_unowned(rules: RoomRules) -> None:
    info = await rules.info("lobby", OUTSIDER)
    assert info["owner"] is None and info["created_ts"] is None and info["private"] is False
    await rules.check_join("lobby", OUTSIDER)
    await rules.check_read("lobby", OUTSIDER)
    assert await code_of(rules.set_topic("lobby", OUTSIDER, "x")) == "forbidden"
    assert await code_of(rules.set_topic("lobby", ADMIN, "x")) == "not_found"


async def test_a_private_room_shows_nothing_to_an_outsider(rules: RoomRules) -> None:
    assert await code_of(rules.info("team", OUTSIDER)) == "forbidden"
    assert await code_of(rules.check_read("team", OUTSIDER)) == "forbidden"
    assert await code_of(rules.check_join("team", OUTSIDER)) == "forbidden"
    for actor in (OWNER, MOD, MEMBER, ADMIN):
        await rules.check_join("team", actor)
        info = await rules.info("team", actor)
    assert info["members"] == ["bob", "mia", "olga"] and info["moderators"] == ["mia"]


async def test_a_kicked_member_of_a_private_room_is_out(rules: RoomRules) -> None:
    await rules.kick("team", MOD, "bob")
    assert await code_of(rules.check_join("team", MEMBER)) == "forbidden"


async def test_a_ban_refuses_join_with_banned_until_it_lapses(
    rules: RoomRules, clock: Clock
) -> None:
    await rules.create("open", "olga", private=False, topic="", in_use=False)
    await rules.ban("open", OWNER, "eve", 60)
    assert await code_of(rules.check_join("open", OUTSIDER)) == "banned"
    clock.ms += 60_000
    await rules.check_join("open", OUTSIDER)


async def test_a_ban_without_seconds_lasts_until_unban(rules: RoomRules, clock: Clock) -> None:
    await rules.ban("team", OWNER, "mia", None)
    clock.ms += 10**12
    assert await code_of(rules.check_join("team", MOD)) == "banned"
    await rules.unban("team", OWNER, "mia")
    # The ban took the moderator out of the room; unban does not bring her back.
    assert await code_of(rules.check_join("team", MOD)) == "forbidden"


@pytest.mark.parametrize(
    ("actor", "target", "code"),
    [
        (MOD, "olga", "forbidden"),  # never against the owner
        (ADMIN, "olga", "forbidden"),
        (MOD, "mia", "forbidden"),  # not against oneself
        (MEMBER, "eve", "forbidden"),  # no role for it
    ],
)
async def test_kick_and_ban_are_refused_where_the_contract_says(
    rules: RoomRules, actor: Actor, target: str, code: str
) -> None:
    assert await code_of(rules.kick("team", actor, target)) == code
    assert await code_of(rules.ban("team", actor, target, None)) == code


async def test_a_moderator_never_kicks_a_moderator(rules: RoomRules) -> None:
    await rules.set_role("team", ADMIN, "bob", "moderator")
    assert await code_of(rules.kick("team", MOD, "bob")) == "forbidden"
    await rules.kick("team", OWNER, "bob")


async def test_set_role_is_the_owners_and_admins(rules: RoomRules) -> None:
    assert await code_of(rules.set_role("team", MOD, "bob", "moderator")) == "forbidden"
    info = await rules.set_role("team", ADMIN, "mia", "member")
    assert info["moderators"] == [] and "mia" in info["members"]
    assert await code_of(rules.set_role("team", ADMIN, "olga", "member")) == "forbidden"


async def test_set_topic_answers_the_new_info(rules: RoomRules) -> None:
    assert (await rules.set_topic("team", MOD, "new"))["topic"] == "new"
    assert await code_of(rules.set_topic("team", MEMBER, "x")) == "forbidden"


async def test_anyone_not_banned_may_invite_in_a_public_room(rules: RoomRules) -> None:
    await rules.create("open", "olga", private=False, topic="", in_use=False)
    await rules.invite("open", OUTSIDER, "bob")
    await rules.ban("open", OWNER, "eve", None)
    assert await code_of(rules.invite("open", OUTSIDER, "bob")) == "forbidden"
