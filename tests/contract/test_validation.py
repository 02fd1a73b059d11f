"""Bad input from clients: every event's payload checked, errors in the ack, nobody disturbed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_server.config import Settings
from tests.support.chat import expect_error, expect_ok, join
from tests.support.clients import NO_PAYLOAD, ChatClient
from tests.support.fixtures import Connect, StartServer

EVENTS = ["join", "leave", "message", "private_message", "typing", "history"]

# A valid payload per event, so each test below can break exactly one thing.
VALID: dict[str, dict[str, Any]] = {
    "join": {"room": "lobby"},
    "leave": {"room": "lobby"},
    "message": {"room": "lobby", "text": "hi"},
    "private_message": {"to": "bob", "text": "hi"},
    "typing": {"room": "lobby"},
    "history": {"room": "lobby"},
}


@pytest.fixture
async def alice(chat_url: str, connect: Connect) -> ChatClient:
    """A connection that is in ``lobby``, so only the payload can be at fault."""
    client = await connect(chat_url, "alice")
    await client.next("welcome")
    await join(client, "lobby")
    return client


# -- payload shape ------------------------------------------------------------------------------

NOT_OBJECTS = [
    pytest.param(NO_PAYLOAD, id="no-payload"),
    pytest.param(None, id="null"),
    pytest.param("lobby", id="string"),
    pytest.param(42, id="number"),
    pytest.param(True, id="bool"),
    pytest.param(["lobby", "hi"], id="list"),
]


@pytest.mark.parametrize("payload", NOT_OBJECTS)
@pytest.mark.parametrize("event", EVENTS)
async def test_a_payload_that_is_not_an_object_answers_invalid(
    alice: ChatClient, event: str, payload: Any
) -> None:
    expect_error(await alice.call(event, payload), "invalid")


MISSING = [
    ("join", "room"),
    ("leave", "room"),
    ("message", "room"),
    ("message", "text"),
    ("private_message", "to"),
    ("private_message", "text"),
    ("typing", "room"),
]


@pytest.mark.parametrize(("event", "field"), MISSING)
async def test_a_missing_field_answers_invalid_naming_it(
    alice: ChatClient, event: str, field: str
) -> None:
    payload = {k: v for k, v in VALID[event].items() if k != field}
    expect_error(await alice.call(event, payload), "invalid", field)


MISTYPED = [
    ("join", "room", 5),
    ("join", "room", None),
    ("join", "room", ["lobby"]),
    ("join", "since", 5),
    ("leave", "room", 5),
    ("message", "room", {"name": "lobby"}),
    ("message", "text", 5),
    ("message", "text", None),
    ("message", "text", ["hi"]),
    ("message", "text", True),
    ("private_message", "to", 5),
    ("private_message", "to", ["bob"]),
    ("private_message", "text", 5),
    ("typing", "room", True),
    ("history", "room", 5),
    ("history", "limit", "10"),
    ("history", "before", 5),
]


@pytest.mark.parametrize(("event", "field", "value"), MISTYPED)
async def test_a_mistyped_field_answers_invalid_naming_it(
    alice: ChatClient, event: str, field: str, value: Any
) -> None:
    payload = {**VALID[event], field: value}
    expect_error(await alice.call(event, payload), "invalid", field)


@pytest.mark.parametrize("event", EVENTS)
async def test_an_unexpected_extra_field_answers_invalid_naming_it(
    alice: ChatClient, event: str
) -> None:
    payload = {**VALID[event], "colour": "red"}
    expect_error(await alice.call(event, payload), "invalid", "colour")


async def test_a_client_cannot_set_id_ts_or_sender_of_a_message(
    alice: ChatClient, chat_url: str, connect: Connect
) -> None:
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    payload = {"room": "lobby", "text": "hi", "id": "x", "ts": 1, "from": "mallory"}
    expect_error(await alice.call("message", payload), "invalid")
    await bob.no_event("message", within=0.3)


async def test_the_error_fields_map_each_bad_field_to_a_list_of_messages(
    alice: ChatClient,
) -> None:
    error = expect_error(await alice.call("message", {"room": "no spaces", "text": ""}), "invalid")
    assert set(error["fields"]) == {"room", "text"}


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["message", "private_message"])
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces"),
        pytest.param(" \n\t\r ", id="white-space"),
        pytest.param("x" * 2001, id="2001-chars"),
        pytest.param("\U0001f600" * 2001, id="2001-emoji"),
        pytest.param(" " + "x" * 2001 + " ", id="2001-chars-after-trimming"),
    ],
)
async def test_text_that_is_empty_or_too_long_after_trimming_answers_invalid(
    alice: ChatClient, event: str, text: str
) -> None:
    payload = {**VALID[event], "text": text}
    expect_error(await alice.call(event, payload), "invalid", "text")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x", id="1-char"),
        pytest.param("x" * 2000, id="2000-chars"),
        pytest.param("\U0001f600" * 2000, id="2000-emoji"),
        pytest.param("e\u0301" * 1000, id="2000-code-points-of-combining-marks"),
        pytest.param("\n  " + "y" * 2000 + "  \n", id="2000-chars-after-trimming"),
        pytest.param("\u00e9" * 2000, id="2000-two-byte-chars"),
    ],
)
async def test_text_of_1_to_2000_code_points_after_trimming_is_accepted_and_kept(
    alice: ChatClient, text: str
) -> None:
    expect_ok(await alice.call("message", {"room": "lobby", "text": text}))
    assert (await alice.next("message"))["text"] == text.strip()


async def test_2000_emoji_are_accepted_in_a_private_message(alice: ChatClient) -> None:
    text = "\U0001f389" * 2000
    expect_ok(await alice.call("private_message", {"to": "bob", "text": text}))
    assert (await alice.next("private_message"))["text"] == text


# -- names --------------------------------------------------------------------------------------

INVALID_ROOMS = [
    pytest.param("", id="empty"),
    pytest.param("r" * 65, id="65-chars"),
    pytest.param("has space", id="space"),
    pytest.param("room/1", id="slash"),
    pytest.param("room!", id="bang"),
    pytest.param("caf\u00e9", id="accented"),
    pytest.param("\u043a\u043e\u043c\u043d\u0430\u0442\u0430", id="cyrillic"),
    pytest.param("lobby\n", id="newline"),
    pytest.param("a@b", id="at"),
    pytest.param("<b>", id="markup"),
]


@pytest.mark.parametrize("room", INVALID_ROOMS)
@pytest.mark.parametrize("event", ["join", "leave", "message", "typing", "history"])
async def test_an_invalid_room_name_answers_invalid_naming_room(
    alice: ChatClient, event: str, room: str
) -> None:
    payload = {**VALID[event], "room": room}
    expect_error(await alice.call(event, payload), "invalid", "room")


@pytest.mark.parametrize("to", ["", "a" * 33, "b b", "b\u00f6b", "#bob", "bob!"])
async def test_an_invalid_recipient_answers_invalid_naming_to(alice: ChatClient, to: str) -> None:
    expect_error(await alice.call("private_message", {"to": to, "text": "hi"}), "invalid", "to")


async def test_a_room_name_of_64_characters_is_accepted(alice: ChatClient) -> None:
    expect_ok(await alice.call("join", {"room": "r" * 64}))


# -- unknown and reserved events ----------------------------------------------------------------


@pytest.mark.parametrize("payload", [{"x": 1}, NO_PAYLOAD, "text"])
async def test_an_unknown_event_with_an_ack_answers_unknown_event(
    alice: ChatClient, payload: Any
) -> None:
    ack = await alice.call("dance", payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "unknown_event"


async def test_an_unknown_event_without_an_ack_is_ignored(alice: ChatClient) -> None:
    await alice.emit("dance", {"x": 1})
    await alice.no_event("error", within=0.2)
    expect_ok(await alice.call("message", {"room": "lobby", "text": "still here"}))
    assert alice.sio.connected


@pytest.mark.parametrize("event", ["connect", "disconnect"])
async def test_a_client_sent_connect_or_disconnect_event_changes_nothing(
    chat_url: str, connect: Connect, alice: ChatClient, event: str
) -> None:
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    await alice.emit(event)
    await alice.emit(event, {"room": "lobby"})
    await alice.no_event("welcome", within=0.1)
    await bob.no_event_where("presence", lambda p: p.get("user") == "alice", within=0.3)
    assert alice.sio.connected
    assert (await join(bob, "lobby"))["members"] == ["alice", "bob"]
    expect_ok(await alice.call("message", {"room": "lobby", "text": "still here"}))
    assert (await bob.next("message"))["text"] == "still here"


@pytest.mark.parametrize("event", ["connect", "disconnect"])
async def test_a_client_sent_connect_or_disconnect_event_with_an_ack_changes_nothing(
    chat_url: str, connect: Connect, alice: ChatClient, event: str
) -> None:
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    answers: list[Any] = []
    await alice.sio.emit(event, {"room": "lobby"}, callback=lambda *a: answers.append(a))
    await bob.no_event_where("presence", lambda p: p.get("user") == "alice", within=0.3)
    assert alice.sio.connected
    assert (await join(bob, "lobby"))["members"] == ["alice", "bob"]
    for answer in answers:  # an answer is optional; if one comes it must be a refusal
        assert answer[0]["ok"] is False


async def test_ack_less_events_of_every_kind_are_handled_without_an_answer(
    alice: ChatClient, chat_url: str, connect: Connect
) -> None:
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    await alice.emit("message", {"room": "lobby", "text": "no ack wanted"})
    assert (await bob.next("message"))["text"] == "no ack wanted"
    await alice.emit("message", "garbage")
    expect_ok(await alice.call("typing", {"room": "lobby"}))


# -- nobody is disturbed ------------------------------------------------------------------------

JUNK: list[tuple[str, Any]] = [
    (event, payload)
    for event in EVENTS
    for payload in (NO_PAYLOAD, None, "x", 0, [], [1, 2], {}, {"room": {"$gt": ""}}, {"a": "b"})
] + [
    ("message", {"room": "lobby", "text": "x" * 5000}),
    ("history", {"room": "lobby", "limit": 1e308}),
    ("history", {"with": "bob", "limit": -(10**30)}),
    ("join", {"room": "lobby", "since": "9" * 1000}),
    ("", {"x": 1}),
    ("x" * 1000, {}),
    ("__proto__", {}),
    ("constructor", {}),
]


async def test_a_barrage_of_bad_events_never_disconnects_anyone_or_stops_the_chat(
    chat_url: str, connect: Connect, alice: ChatClient
) -> None:
    bob = await connect(chat_url, "bob")
    await join(bob, "lobby")
    for event, payload in JUNK:
        ack = await alice.call(event, payload)
        assert ack["ok"] is False, (event, payload, ack)
        await alice.emit(event, payload)
    assert alice.sio.connected
    assert bob.sio.connected
    expect_ok(await bob.call("message", {"room": "lobby", "text": "all good?"}))
    expect_ok(await alice.call("message", {"room": "lobby", "text": "all good."}))
    assert [(await bob.next("message"))["text"] for _ in range(2)] == ["all good?", "all good."]
    assert alice.disconnect_reason is None
    assert bob.disconnect_reason is None


async def test_an_event_with_several_arguments_is_judged_by_the_first(
    alice: ChatClient,
) -> None:
    ack = await alice.sio.call("message", ({"room": "lobby", "text": "hi"}, "extra"), timeout=5)
    assert isinstance(ack, dict)
    if ack["ok"]:
        assert (await alice.next("message"))["text"] == "hi"
    else:
        expect_error(ack, "invalid")


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        pytest.param("message", {"room": "lobby", "text": "x\ud800y"}, id="message"),
        pytest.param("private_message", {"to": "bob", "text": "\udfff"}, id="private"),
    ],
)
async def test_text_with_a_lone_surrogate_answers_invalid_naming_text_in_every_store(
    start_server: StartServer,
    backend_settings: Callable[..., Settings],
    connect: Connect,
    event: str,
    payload: dict[str, Any],
) -> None:
    """Not Unicode text (it cannot be stored as UTF-8): refused as invalid, not an error."""
    client = await connect(await start_server(backend_settings()), "alice")
    await join(client, "lobby")
    expect_error(await client.call(event, payload), "invalid", "text")


async def test_an_id_written_in_digits_other_than_ascii_answers_invalid(
    alice: ChatClient,
) -> None:
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in "001796296559237")
    since = f"{arabic_indic}-{'0' * 16}"
    expect_error(await alice.call("join", {"room": "lobby", "since": since}), "invalid", "since")
