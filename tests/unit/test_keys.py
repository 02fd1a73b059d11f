"""The key layout: today's names on one Redis, one slot per conversation on a cluster."""

from __future__ import annotations

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from chat_server.stores.keys import KeyLayout, SeqKey, slot_tag

PLAIN = KeyLayout()
CLUSTER = KeyLayout(cluster=True)


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_names_on_one_redis_are_those_a_deployed_chat_already_holds() -> None:
    history = PLAIN.history("room:general")
    assert (history.stream, history.trimmed, history.states, history.revs) == (
        "chat:h:room:general",
        "chat:trimmed:room:general",
        "chat:states:room:general",
        "chat:revs:room:general",
    )
    assert PLAIN.once("dm:ann:bob", "k1") == "chat:once:k1"
    assert PLAIN.seq("room:general") == SeqKey("chat:seq", 1, 0)
    assert PLAIN.presence("general") == "chat:p:general"
    assert PLAIN.presence_entry("general", "ann") == "chat:pu:general:ann"
    assert PLAIN.room("general") == (
        "chat:{room:general}:s",
        "chat:{room:general}:m",
        "chat:{room:general}:mod",
        "chat:{room:general}:b",
    )
    assert PLAIN.partners("ann") == "chat:dms:ann"
    assert PLAIN.markers("ann") == "chat:read:ann"
    assert PLAIN.ban("ann") == "chat:ban:ann"
    assert PLAIN.idempotency("emit:k") == "chat:idem:emit:k"
    assert PLAIN.webhooks() == "chat:webhooks"


def test_every_key_of_a_room_shares_the_slot_of_its_channel_on_a_cluster() -> None:
    history = CLUSTER.history("room:general")
    keys = [history.stream, history.trimmed, history.states, history.revs]
    keys += [CLUSTER.once("room:general", "k1"), CLUSTER.seq("room:general").key]
    keys += [CLUSTER.presence("general"), CLUSTER.presence_entry("general", "ann")]
    keys += CLUSTER.room("general")
    assert {slot(key) for key in keys} == {slot("chat:0:{room:general}")}


def test_every_key_of_a_private_conversation_shares_one_slot_on_a_cluster() -> None:
    history = CLUSTER.history("dm:ann:bob")
    keys = [history.stream, history.trimmed, history.states, history.revs]
    keys += [CLUSTER.once("dm:ann:bob", "k1"), CLUSTER.seq("dm:ann:bob").key]
    assert {slot(key) for key in keys} == {slot("{dm:ann:bob}")}


def test_a_users_keys_share_the_slot_of_the_users_channel_on_a_cluster() -> None:
    keys = [CLUSTER.partners("ann"), CLUSTER.markers("ann"), CLUSTER.ban("ann")]
    assert {slot(key) for key in keys} == {slot("chat:0:{user:ann}")}


def test_the_id_counter_of_a_cluster_conversation_is_its_slots_and_keeps_ids_apart() -> None:
    seq = CLUSTER.seq("room:general")
    assert seq.multiplier == REDIS_CLUSTER_HASH_SLOTS
    assert seq.offset == slot("{room:general}")
    # Two slots' counters at the same value still give different sequence parts.
    other = CLUSTER.seq("room:kitchen")
    assert other.offset != seq.offset
    assert 7 * seq.multiplier + seq.offset != 7 * other.multiplier + other.offset


def test_two_conversations_in_one_slot_share_one_counter() -> None:
    a = "room:general"
    target = slot(f"{{{a}}}")
    b = next(f"dm:x:{n}" for n in range(10**6) if slot(f"{{dm:x:{n}}}") == target)
    assert CLUSTER.seq(a) == CLUSTER.seq(b)


def test_each_slot_has_a_tag_that_hashes_to_it() -> None:
    for n in (0, 1, 5000, REDIS_CLUSTER_HASH_SLOTS - 1):
        assert slot(f"{{{slot_tag(n)}}}") == n
