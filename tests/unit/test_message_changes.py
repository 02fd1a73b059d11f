"""Edits, deletions, reactions, updates, unread counts: memory and Redis, the same rules."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from chat_server.core.changes import MAX_REACTIONS, Change
from chat_server.core.errors import ChatError
from chat_server.core.ports import History, Markers, Record
from chat_server.stores.history import RedisHistory
from chat_server.stores.markers import MARKER_SECONDS, MAX_MARKERS, RedisMarkers
from tests.support.chat import unique
from tests.unit.conftest import MakeHistory


async def post(history: History, key: str, sender: str = "alice", text: str = "hi") -> Record:
    return await history.append(key, {"room": "r", "from": sender, "text": text})


def edit(actor: str, text: str) -> Change:
    return Change("edit", actor, text=text)


def react(actor: str, emoji: str, *, add: bool = True) -> Change:
    return Change("react", actor, emoji=emoji, add=add)


async def refused(history: History, key: str, message_id: str, change: Change) -> str:
    with pytest.raises(ChatError) as caught:
        await history.change(key, message_id, change)
    return caught.value.code


async def test_a_new_message_has_its_id_as_rev(make_history: MakeHistory) -> None:
    message = await post(make_history(10), unique("room:"))
    assert message["rev"] == message["id"]


async def test_an_edit_changes_the_text_and_takes_a_fresh_rev(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    result = await history.change(key, message["id"], edit("alice", "fixed"))
    assert result.changed
    assert result.message["text"] == "fixed"
    assert result.message["rev"] > message["id"]
    assert result.message["edited_ts"] >= message["ts"]
    assert result.message["ts"] == message["ts"]


async def test_history_returns_the_current_state(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    await post(history, key, text="second")
    changed = (await history.change(key, message["id"], edit("alice", "fixed"))).message
    assert (await history.latest(key, 10))[0] == changed
    assert (await history.before(key, None, 1))[0]["text"] == "second"


async def test_an_edit_keeps_every_other_field(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await history.append(
        key, {"room": "r", "from": "alice", "text": "é", "client_id": "c1"}
    )
    changed = (await history.change(key, message["id"], edit("alice", "ü ✓"))).message
    assert {k: changed[k] for k in ("id", "room", "from", "client_id", "ts")} == {
        k: message[k] for k in ("id", "room", "from", "client_id", "ts")
    }
    assert changed["text"] == "ü ✓"


@pytest.mark.parametrize(
    "change",
    [edit("bob", "x"), Change("delete", "bob")],
    ids=["edit", "delete"],
)
async def test_someone_elses_message_is_forbidden(
    make_history: MakeHistory, change: Change
) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    assert await refused(history, key, message["id"], change) == "forbidden"


async def test_a_moderator_may_delete_anyones_message(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    result = await history.change(key, message["id"], Change("delete", "mod", moderates=True))
    assert result.message["deleted"] is True


async def test_a_message_not_kept_is_not_found(make_history: MakeHistory) -> None:
    history, key = make_history(2), unique("room:")
    first = await post(history, key)
    await post(history, key)
    await post(history, key)
    assert await refused(history, key, first["id"], edit("alice", "x")) == "not_found"
    other = await post(history, unique("room:"))
    assert await refused(history, key, other["id"], edit("alice", "x")) == "not_found"


async def test_a_deletion_leaves_a_tombstone_without_reactions(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    await history.change(key, message["id"], edit("alice", "edited"))
    await history.change(key, message["id"], react("bob", "👍"))
    tomb = (await history.change(key, message["id"], Change("delete", "alice"))).message
    assert (tomb["text"], tomb["deleted"]) == ("", True)
    assert "reactions" not in tomb
    assert "edited_ts" not in tomb
    assert (await history.latest(key, 1))[0] == tomb


@pytest.mark.parametrize(
    "change",
    [edit("alice", "x"), Change("delete", "alice"), react("alice", "👍")],
    ids=["edit", "delete", "react"],
)
async def test_a_tombstone_cannot_change(make_history: MakeHistory, change: Change) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    await history.change(key, message["id"], Change("delete", "alice"))
    assert await refused(history, key, message["id"], change) == "not_found"


async def test_reactions_list_their_users_sorted(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    for user in ("carol", "bob", "alice"):
        await history.change(key, message["id"], react(user, "👍"))
    result = await history.change(key, message["id"], react("bob", "🎉"))
    assert result.message["reactions"] == {"👍": ["alice", "bob", "carol"], "🎉": ["bob"]}


async def test_adding_a_reaction_twice_changes_nothing(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    first = await history.change(key, message["id"], react("bob", "👍"))
    again = await history.change(key, message["id"], react("bob", "👍"))
    assert not again.changed
    assert again.message == first.message


async def test_removing_an_absent_reaction_changes_nothing(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    result = await history.change(key, message["id"], react("bob", "👍", add=False))
    assert not result.changed
    assert result.message["rev"] == message["id"]


async def test_removing_the_last_user_of_an_emoji_drops_it(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    await history.change(key, message["id"], react("bob", "👍"))
    await history.change(key, message["id"], react("bob", "🎉"))
    result = await history.change(key, message["id"], react("bob", "👍", add=False))
    assert result.message["reactions"] == {"🎉": ["bob"]}
    last = await history.change(key, message["id"], react("bob", "🎉", add=False))
    assert not last.message.get("reactions")


async def test_a_reaction_past_the_distinct_emoji_cap_is_invalid(
    make_history: MakeHistory,
) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    for n in range(MAX_REACTIONS):
        await history.change(key, message["id"], react("bob", f"e{n}"))
    assert await refused(history, key, message["id"], react("bob", "one-more")) == "invalid"
    # An emoji already there may still gain users.
    await history.change(key, message["id"], react("carol", "e0"))


async def test_ids_and_revs_of_a_conversation_only_grow(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    seen = [message["id"]]
    for n in range(5):
        seen.append(
            (await history.change(key, message["id"], edit("alice", str(n)))).message["rev"]
        )
        seen.append((await post(history, key))["id"])
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)


async def test_after_answers_changes_of_older_messages_oldest_rev_first(
    make_history: MakeHistory,
) -> None:
    history, key = make_history(10), unique("room:")
    old, before = await post(history, key), await post(history, key)
    await history.change(key, before["id"], edit("alice", "seen already"))
    since = (await post(history, key))["id"]
    second = (await history.change(key, before["id"], edit("alice", "later"))).message
    first_update = (await history.change(key, old["id"], react("bob", "👍"))).message
    newer = await post(history, key)
    page = await history.after(key, since)
    assert page.updates == sorted([second, first_update], key=lambda m: m["rev"])
    assert [m["id"] for m in page.messages] == [newer["id"]]


async def test_after_gives_a_newer_message_in_its_current_state(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    since = (await post(history, key))["id"]
    newer = await post(history, key)
    changed = (await history.change(key, newer["id"], edit("alice", "x"))).message
    page = await history.after(key, since)
    assert (page.messages, page.updates) == ([changed], [])


async def test_after_the_latest_rev_answers_no_updates(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    rev = (await history.change(key, message["id"], edit("alice", "x"))).message["rev"]
    page = await history.after(key, rev)
    assert (page.messages, page.updates) == ([], [])


async def test_the_state_of_a_trimmed_message_goes_with_it(make_history: MakeHistory) -> None:
    history, key = make_history(2), unique("room:")
    first = await post(history, key)
    await history.change(key, first["id"], edit("alice", "x"))
    await post(history, key)
    await post(history, key)
    page = await history.after(key, first["id"])
    assert page.updates == []


@pytest.mark.redis
async def test_redis_keeps_no_state_of_trimmed_messages(redis_client: aioredis.Redis) -> None:
    history, key = RedisHistory(redis_client, 2), unique("room:")
    first = await post(history, key)
    await history.change(key, first["id"], edit("alice", "x"))
    await post(history, key)
    await post(history, key)
    assert await redis_client.exists(f"chat:states:{key}", f"chat:revs:{key}") == 0


async def test_racing_changes_of_one_message_all_apply(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    message = await post(history, key)
    users = [f"u{n}" for n in range(20)]
    await asyncio.gather(*(history.change(key, message["id"], react(u, "👍")) for u in users))
    assert (await history.latest(key, 1))[0]["reactions"] == {"👍": sorted(users)}


async def test_unread_counts_others_messages_after_the_marker(make_history: MakeHistory) -> None:
    history, key = make_history(10), unique("room:")
    marker = (await post(history, key, "bob"))["id"]
    await post(history, key, "bob")
    await post(history, key, "alice")
    gone = await post(history, key, "bob")
    await history.change(key, gone["id"], Change("delete", "bob"))
    await post(history, key, "carol")
    assert await history.unread(key, "alice", marker) == 2
    assert await history.unread(key, "alice", None) == 3
    assert await history.unread(unique("room:"), "alice", None) == 0


async def test_a_marker_moves_forward_only(markers: Markers) -> None:
    user, key = unique("u"), unique("room:")
    assert await markers.mark(user, key, "000000000000002-0000000000000002") == (
        "000000000000002-0000000000000002",
        True,
    )
    older = await markers.mark(user, key, "000000000000001-0000000000000001")
    assert older == ("000000000000002-0000000000000002", False)
    same = await markers.mark(user, key, "000000000000002-0000000000000002")
    assert same == ("000000000000002-0000000000000002", False)


async def test_markers_are_per_user_and_conversation(markers: Markers) -> None:
    alice, bob, a, b = unique("u"), unique("u"), unique("room:"), unique("room:")
    await markers.mark(alice, a, "000000000000001-0000000000000001")
    assert await markers.get_many(alice, [a, b]) == ["000000000000001-0000000000000001", None]
    assert await markers.get_many(bob, [a]) == [None]
    assert await markers.get_many(bob, []) == []


async def test_a_user_keeps_a_bounded_number_of_markers(markers: Markers) -> None:
    user = unique("u")
    keys = [f"room:{n}" for n in range(MAX_MARKERS + 5)]
    for key in keys:
        await markers.mark(user, key, "000000000000001-0000000000000001")
    kept = await markers.get_many(user, keys)
    assert sum(marker is not None for marker in kept) == MAX_MARKERS
    assert kept[-1] is not None


@pytest.mark.redis
async def test_redis_markers_expire(redis_client: aioredis.Redis) -> None:
    user = unique("u")
    await RedisMarkers(redis_client).mark(user, "room:a", "000000000000001-0000000000000001")
    assert 0 < await redis_client.ttl(f"chat:read:{user}") <= MARKER_SECONDS
