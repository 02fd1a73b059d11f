"""``edit``, ``delete``, ``react``, ``read`` and the events they emit, in rooms and in private."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_server.config import Settings
from tests.support.chat import assert_has, expect_error, expect_ok, join, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer

MALFORMED_ID = "12-34"


@pytest.fixture
async def url(start_server: StartServer, backend_settings: Callable[..., Settings]) -> str:
    """A single-process server, once with in-memory stores and once over Redis."""
    return await start_server(backend_settings())


def name_of(client: ChatClient) -> str:
    """The username the server welcomed ``client`` as."""
    name: str = next(p["user"] for event, p in client.log if event == "welcome")
    return name


async def room_with_message(
    url: str, connect: Connect
) -> tuple[ChatClient, ChatClient, str, dict[str, Any]]:
    """Alice and Bob in a new room, Alice's message heard by Bob."""
    room = unique("room")
    alice, bob = await connect(url, unique("alice")), await connect(url, unique("bob"))
    await join(alice, room)
    await join(bob, room)
    sent = expect_ok(await alice.call("message", {"room": room, "text": "helo"}))
    await bob.next("message")
    return alice, bob, room, sent


async def test_an_edit_answers_id_and_a_fresh_rev(url: str, connect: Connect) -> None:
    alice, _, room, sent = await room_with_message(url, connect)
    ack = expect_ok(await alice.call("edit", {"room": room, "id": sent["id"], "text": "hello"}))
    assert ack["id"] == sent["id"]
    assert ack["rev"] > sent["id"]


async def test_an_edit_reaches_the_room_as_message_updated(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    ack = expect_ok(await alice.call("edit", {"room": room, "id": sent["id"], "text": "hello"}))
    for client in (alice, bob):
        update = await client.next("message_updated")
        assert_has(update, {"id": sent["id"], "rev": ack["rev"], "room": room, "text": "hello"})
        assert isinstance(update["edited_ts"], int)
        assert update["ts"] == sent["ts"]


async def test_history_shows_the_edited_text(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    expect_ok(await alice.call("edit", {"room": room, "id": sent["id"], "text": "hello"}))
    messages = expect_ok(await bob.call("history", {"room": room}))["messages"]
    assert_has(messages[-1], {"id": sent["id"], "text": "hello"})


async def test_a_deleted_message_is_a_tombstone_everywhere(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    expect_ok(await alice.call("delete", {"room": room, "id": sent["id"]}))
    update = await bob.next("message_updated")
    assert_has(update, {"id": sent["id"], "text": "", "deleted": True})
    joined = await join(bob, room)
    assert_has(joined["history"][-1], {"id": sent["id"], "text": "", "deleted": True})


async def test_a_reaction_reaches_the_room(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    payload = {"room": room, "id": sent["id"], "emoji": "👍", "add": True}
    expect_ok(await bob.call("react", payload))
    update = await alice.next("message_updated")
    assert update["reactions"] == {"👍": [name_of(bob)]}


async def test_a_reaction_added_twice_answers_the_same_rev(url: str, connect: Connect) -> None:
    _, bob, room, sent = await room_with_message(url, connect)
    payload = {"room": room, "id": sent["id"], "emoji": "👍", "add": True}
    first = expect_ok(await bob.call("react", payload))
    again = expect_ok(await bob.call("react", payload))
    assert again["rev"] == first["rev"]


async def test_a_private_edit_reaches_every_connection_of_both(url: str, connect: Connect) -> None:
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, alice_too = await connect(url, alice_name), await connect(url, alice_name)
    bob = await connect(url, bob_name)
    sent = expect_ok(await alice.call("private_message", {"to": bob_name, "text": "helo"}))
    ack = expect_ok(
        await alice.call("edit", {"with": bob_name, "id": sent["id"], "text": "hello"})
    )
    for client in (alice, alice_too, bob):
        update = await client.next("message_updated")
        assert_has(update, {"id": sent["id"], "rev": ack["rev"], "to": bob_name, "text": "hello"})


async def test_the_recipient_may_react_to_a_private_message(url: str, connect: Connect) -> None:
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, bob = await connect(url, alice_name), await connect(url, bob_name)
    sent = expect_ok(await alice.call("private_message", {"to": bob_name, "text": "hi"}))
    react = {"with": alice_name, "id": sent["id"], "emoji": "❤️", "add": True}
    expect_ok(await bob.call("react", react))
    assert (await alice.next("message_updated"))["reactions"] == {"❤️": [bob_name]}


async def test_someone_elses_private_conversation_is_not_found(url: str, connect: Connect) -> None:
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, carol = await connect(url, alice_name), await connect(url, unique("carol"))
    sent = expect_ok(await alice.call("private_message", {"to": bob_name, "text": "hi"}))
    react = {"with": bob_name, "id": sent["id"], "emoji": "👍", "add": True}
    expect_error(await carol.call("react", react), "not_found")


async def test_join_since_answers_the_changes_of_older_messages(
    url: str, connect: Connect
) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    later = expect_ok(await alice.call("message", {"room": room, "text": "later"}))
    edited = expect_ok(await alice.call("edit", {"room": room, "id": sent["id"], "text": "hello"}))
    joined = await join(bob, room, since=later["id"])
    assert [(u["id"], u["rev"], u["text"]) for u in joined["updates"]] == [
        (sent["id"], edited["rev"], "hello")
    ]


async def test_join_since_the_latest_rev_answers_no_updates(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    edited = expect_ok(await alice.call("edit", {"room": room, "id": sent["id"], "text": "x"}))
    joined = await join(bob, room, since=edited["rev"])
    assert (joined["updates"], joined["history"]) == ([], [])


async def test_join_without_since_answers_no_updates_field(url: str, connect: Connect) -> None:
    alice = await connect(url, unique("alice"))
    assert "updates" not in await join(alice, unique("room"))


# -- refusals ---------------------------------------------------------------------

CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("edit", {"text": "x"}),
    ("delete", {}),
    ("react", {"emoji": "👍", "add": True}),
]


@pytest.mark.parametrize(("event", "extra"), CHANGES, ids=[c[0] for c in CHANGES])
async def test_changing_someone_elses_message_is_forbidden_or_allowed(
    url: str, connect: Connect, event: str, extra: dict[str, Any]
) -> None:
    _, bob, room, sent = await room_with_message(url, connect)
    ack = await bob.call(event, {"room": room, "id": sent["id"], **extra})
    if event == "react":
        expect_ok(ack)  # anyone who sees a message may react to it
    else:
        expect_error(ack, "forbidden")


@pytest.mark.parametrize(("event", "extra"), CHANGES, ids=[c[0] for c in CHANGES])
async def test_changing_an_unknown_message_is_not_found(
    url: str, connect: Connect, event: str, extra: dict[str, Any]
) -> None:
    alice, _, room, _ = await room_with_message(url, connect)
    unknown = "000000000000001-0000000000000001"
    expect_error(await alice.call(event, {"room": room, "id": unknown, **extra}), "not_found")


@pytest.mark.parametrize(("event", "extra"), CHANGES, ids=[c[0] for c in CHANGES])
async def test_changing_a_tombstone_is_not_found(
    url: str, connect: Connect, event: str, extra: dict[str, Any]
) -> None:
    alice, _, room, sent = await room_with_message(url, connect)
    expect_ok(await alice.call("delete", {"room": room, "id": sent["id"]}))
    expect_error(await alice.call(event, {"room": room, "id": sent["id"], **extra}), "not_found")


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("edit", {"text": ""}, "text"),
    ("edit", {"text": "   "}, "text"),
    ("edit", {"text": "x" * 2001}, "text"),
    ("edit", {}, "text"),
    ("react", {"emoji": "👍 ", "add": True}, "emoji"),
    ("react", {"emoji": "a b", "add": True}, "emoji"),
    ("react", {"emoji": "x" * 33, "add": True}, "emoji"),
    ("react", {"emoji": "", "add": True}, "emoji"),
    ("react", {"emoji": "👍", "add": "yes"}, "add"),
    ("react", {"emoji": "👍", "add": 1}, "add"),
    ("react", {"emoji": "👍"}, "add"),
    ("read", {"id": MALFORMED_ID}, "id"),
    ("delete", {"id": MALFORMED_ID}, "id"),
    ("delete", {"id": None}, "id"),
]


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    INVALID,
    ids=[f"{e}-{f}-{i}" for i, (e, _, f) in enumerate(INVALID)],
)
async def test_a_malformed_change_is_invalid(
    url: str, connect: Connect, event: str, payload: dict[str, Any], field: str
) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    ack = await alice.call(event, {"room": room, "id": sent["id"], **payload})
    expect_error(ack, "invalid", field)
    await bob.no_event("message_updated", within=0.2)


@pytest.mark.parametrize("event", ["edit", "delete", "react", "read"])
@pytest.mark.parametrize("where", [{}, {"room": "r", "with": "bob"}], ids=["neither", "both"])
async def test_a_change_needs_exactly_one_of_room_and_with(
    url: str, connect: Connect, event: str, where: dict[str, str]
) -> None:
    alice = await connect(url, unique("alice"))
    payload = {"id": "000000000000001-0000000000000001", "text": "x", "emoji": "y", "add": True}
    allowed = {"edit": {"id", "text"}, "delete": {"id"}, "react": {"id", "emoji", "add"}}
    body = {k: v for k, v in payload.items() if k in allowed.get(event, {"id"})}
    expect_error(await alice.call(event, {**where, **body}), "invalid", "_schema")


async def test_an_emoji_of_32_characters_is_accepted(url: str, connect: Connect) -> None:
    _, bob, room, sent = await room_with_message(url, connect)
    react = {"room": room, "id": sent["id"], "emoji": "x" * 32, "add": True}
    expect_ok(await bob.call("react", react))


async def test_the_21st_distinct_emoji_is_invalid(url: str, connect: Connect) -> None:
    _, bob, room, sent = await room_with_message(url, connect)
    for n in range(20):
        expect_ok(
            await bob.call(
                "react", {"room": room, "id": sent["id"], "emoji": f"e{n}", "add": True}
            )
        )
    ack = await bob.call("react", {"room": room, "id": sent["id"], "emoji": "e20", "add": True})
    expect_error(ack, "invalid", "emoji")


# -- read markers -------------------------------------------------------------------


async def test_read_answers_the_marker_and_tells_the_readers_connections(
    url: str, connect: Connect
) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    bob_too = await connect(url, name_of(bob))
    ack = expect_ok(await bob.call("read", {"room": room, "id": sent["id"]}))
    assert ack["id"] == sent["id"]
    for client in (bob, bob_too):
        assert await client.next("read") == {"room": room, "user": name_of(bob), "id": sent["id"]}
    await alice.no_event("read", within=0.2)


async def test_read_only_moves_forward(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    later = expect_ok(await alice.call("message", {"room": room, "text": "later"}))
    expect_ok(await bob.call("read", {"room": room, "id": later["id"]}))
    await bob.next("read")
    ack = expect_ok(await bob.call("read", {"room": room, "id": sent["id"]}))
    assert ack["id"] == later["id"]
    await bob.no_event("read", within=0.2)


async def test_a_private_read_tells_the_other_user_with_the_reader(
    url: str, connect: Connect
) -> None:
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, bob = await connect(url, alice_name), await connect(url, bob_name)
    sent = expect_ok(await alice.call("private_message", {"to": bob_name, "text": "hi"}))
    expect_ok(await bob.call("read", {"with": alice_name, "id": sent["id"]}))
    assert await bob.next("read") == {"with": alice_name, "user": bob_name, "id": sent["id"]}
    assert await alice.next("read") == {"with": bob_name, "user": bob_name, "id": sent["id"]}


async def test_join_answers_the_marker_and_what_is_unread(url: str, connect: Connect) -> None:
    alice, bob, room, sent = await room_with_message(url, connect)
    expect_ok(await alice.call("message", {"room": room, "text": "two"}))
    gone = expect_ok(await alice.call("message", {"room": room, "text": "three"}))
    expect_ok(await alice.call("delete", {"room": room, "id": gone["id"]}))
    expect_ok(await bob.call("message", {"room": room, "text": "mine"}))
    expect_ok(await bob.call("read", {"room": room, "id": sent["id"]}))
    joined = await join(await connect(url, name_of(bob)), room)
    assert (joined["read"], joined["unread"]) == (sent["id"], 1)


async def test_join_with_no_marker_counts_every_kept_message_of_others(
    url: str, connect: Connect
) -> None:
    _, _, room, _ = await room_with_message(url, connect)
    joined = await join(await connect(url, unique("carol")), room)
    assert (joined["read"], joined["unread"]) == (None, 1)


async def test_conversations_answer_read_and_unread(url: str, connect: Connect) -> None:
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, bob = await connect(url, alice_name), await connect(url, bob_name)
    first = expect_ok(await alice.call("private_message", {"to": bob_name, "text": "1"}))
    expect_ok(await alice.call("private_message", {"to": bob_name, "text": "2"}))
    expect_ok(await bob.call("read", {"with": alice_name, "id": first["id"]}))
    entry = expect_ok(await bob.call("conversations", {}))["conversations"][0]
    assert_has(entry, {"with": alice_name, "read": first["id"], "unread": 1})
    mine = expect_ok(await alice.call("conversations", {}))["conversations"][0]
    assert_has(mine, {"with": bob_name, "read": None, "unread": 0})


async def test_a_marker_need_not_be_a_kept_message(url: str, connect: Connect) -> None:
    alice = await connect(url, unique("alice"))
    marker = "000000000000001-0000000000000001"
    assert (
        expect_ok(await alice.call("read", {"room": unique("room"), "id": marker}))["id"] == marker
    )
