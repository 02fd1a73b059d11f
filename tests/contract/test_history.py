"""History: join's tail and ``since`` recovery, the ``history`` event, caps, ids and ordering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chat_server.config import Settings
from tests.support.chat import assert_has, expect_error, expect_ok, join
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
def serve(start_server: StartServer, backend_settings: Callable[..., Settings]) -> Serve:
    """``await serve(**settings) -> url``, once with in-memory stores and once over Redis."""

    async def start(**overrides: Any) -> str:
        return await start_server(backend_settings(**overrides))

    return start


async def fill(client: ChatClient, room: str, n: int) -> list[str]:
    """Send ``n`` messages one after another; return their ids in send order."""
    await join(client, room)
    ids = []
    for i in range(n):
        ack = expect_ok(await client.call("message", {"room": room, "text": f"m{i}"}))
        ids.append(ack["id"])
    return ids


async def history(client: ChatClient, **request: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = expect_ok(await client.call("history", request))["messages"]
    return messages


def ids_of(messages: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


# -- join ----------------------------------------------------------------------------------


async def test_join_history_is_the_newest_50_oldest_first(serve: Serve, connect: Connect) -> None:
    url = await serve()
    ids = await fill(await connect(url, "alice"), "lobby", 60)
    ack = await join(await connect(url, "bob"), "lobby")
    assert ids_of(ack["history"]) == ids[-50:]
    assert ack["recovered"] is True


async def test_join_history_is_everything_kept_when_fewer_than_50(
    serve: Serve, connect: Connect
) -> None:
    url = await serve(history_size=3)
    ids = await fill(await connect(url, "alice"), "lobby", 5)
    ack = await join(await connect(url, "bob"), "lobby")
    assert ids_of(ack["history"]) == ids[-3:]
    assert ack["recovered"] is True


async def test_join_history_entries_are_the_messages_as_delivered(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    await fill(alice, "lobby", 2)
    delivered = [await alice.next("message") for _ in range(2)]
    ack = await join(await connect(url, "bob"), "lobby")
    assert ack["history"] == delivered


async def test_join_since_returns_every_kept_message_after_it_even_past_50(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    ids = await fill(await connect(url, "alice"), "lobby", 70)
    ack = await join(await connect(url, "bob"), "lobby", since=ids[4])
    assert ids_of(ack["history"]) == ids[5:]
    assert ack["recovered"] is True


async def test_join_since_the_latest_message_returns_nothing_and_recovered(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    ids = await fill(await connect(url, "alice"), "lobby", 3)
    ack = await join(await connect(url, "bob"), "lobby", since=ids[-1])
    assert ack["history"] == []
    assert ack["recovered"] is True


async def test_join_since_an_id_older_than_what_is_kept_is_not_recovered(
    serve: Serve, connect: Connect
) -> None:
    url = await serve(history_size=3)
    ids = await fill(await connect(url, "alice"), "lobby", 6)
    ack = await join(await connect(url, "bob"), "lobby", since=ids[0])
    assert ids_of(ack["history"]) == ids[3:]
    assert ack["recovered"] is False


async def test_join_since_the_message_just_before_the_oldest_kept_is_recovered(
    serve: Serve, connect: Connect
) -> None:
    url = await serve(history_size=3)
    ids = await fill(await connect(url, "alice"), "lobby", 6)
    ack = await join(await connect(url, "bob"), "lobby", since=ids[2])
    assert ids_of(ack["history"]) == ids[3:]
    assert ack["recovered"] is True


async def test_a_reconnecting_client_recovers_what_it_missed_with_since(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice, bob = await connect(url, "alice"), await connect(url, "bob")
    await join(bob, "lobby")
    seen = await fill(alice, "lobby", 3)
    await bob.close()
    missed = [
        expect_ok(await alice.call("message", {"room": "lobby", "text": f"missed{i}"}))["id"]
        for i in range(4)
    ]
    back = await connect(url, "bob")
    ack = await join(back, "lobby", since=seen[-1])
    assert ids_of(ack["history"]) == missed
    assert ack["recovered"] is True


@pytest.mark.parametrize("since", ["", "not-an-id", "123", 42, None, ["x"]])
async def test_join_with_a_malformed_since_answers_invalid(
    serve: Serve, connect: Connect, since: Any
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ack = await alice.call("join", {"room": "lobby", "since": since})
    expect_error(ack, "invalid", "since")


# -- the history event ------------------------------------------------------------------------


async def test_history_answers_ok_and_messages(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    assert_has(await alice.call("history", {"room": "lobby"}), {"ok": True, "messages": []})


async def test_history_of_an_unused_room_is_empty(serve: Serve, connect: Connect) -> None:
    url = await serve()
    assert await history(await connect(url, "alice"), room="never-used") == []


async def test_history_does_not_require_being_in_the_room(serve: Serve, connect: Connect) -> None:
    url = await serve()
    ids = await fill(await connect(url, "alice"), "lobby", 3)
    outsider = await connect(url, "bob")
    assert ids_of(await history(outsider, room="lobby")) == ids


async def test_history_defaults_to_the_newest_50_oldest_first(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 60)
    assert ids_of(await history(alice, room="lobby")) == ids[-50:]


async def test_history_limit_gives_the_newest_that_many(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 12)
    assert ids_of(await history(alice, room="lobby", limit=5)) == ids[-5:]


async def test_history_before_gives_the_messages_just_before_that_id(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 12)
    assert ids_of(await history(alice, room="lobby", before=ids[10], limit=3)) == ids[7:10]


async def test_history_before_without_limit_gives_up_to_50(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 60)
    assert ids_of(await history(alice, room="lobby", before=ids[55])) == ids[5:55]


async def test_history_before_the_oldest_message_is_empty(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 3)
    assert await history(alice, room="lobby", before=ids[0]) == []


async def test_history_pages_backwards_through_everything_kept(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 23)
    pages: list[str] = []
    before: dict[str, Any] = {}
    while True:
        page = ids_of(await history(alice, room="lobby", limit=10, **before))
        if not page:
            break
        pages = page + pages
        before = {"before": page[0]}
    assert pages == ids


async def test_history_limit_above_200_is_capped_at_200(serve: Serve, connect: Connect) -> None:
    url = await serve(history_size=300)
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 230)
    assert ids_of(await history(alice, room="lobby", limit=1000)) == ids[-200:]


async def test_a_huge_history_limit_is_capped_rather_than_refused(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 3)
    assert ids_of(await history(alice, room="lobby", limit=10**30)) == ids


async def test_history_limit_of_exactly_200_is_honoured(serve: Serve, connect: Connect) -> None:
    url = await serve(history_size=300)
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 210)
    assert ids_of(await history(alice, room="lobby", limit=200)) == ids[-200:]


async def test_history_of_a_conversation_takes_limit_and_before(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    ids = [
        expect_ok(await alice.call("private_message", {"to": "bob", "text": str(i)}))["id"]
        for i in range(8)
    ]
    assert ids_of(await history(alice, **{"with": "bob", "limit": 3})) == ids[-3:]
    page = await history(alice, **{"with": "bob", "before": ids[4], "limit": 2})
    assert ids_of(page) == ids[2:4]


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"room": "lobby", "with": "bob"}, id="both"),
        pytest.param({}, id="neither"),
        pytest.param({"limit": 5}, id="neither-with-limit"),
    ],
)
async def test_history_needs_exactly_one_of_room_and_with(
    serve: Serve, connect: Connect, request_: dict[str, Any]
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    expect_error(await alice.call("history", request_), "invalid")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        pytest.param({"room": "lobby", "limit": 0}, "limit", id="limit-0"),
        pytest.param({"room": "lobby", "limit": -1}, "limit", id="limit-negative"),
        pytest.param({"room": "lobby", "limit": "5"}, "limit", id="limit-string"),
        pytest.param({"room": "lobby", "limit": 2.5}, "limit", id="limit-fraction"),
        pytest.param({"room": "lobby", "limit": True}, "limit", id="limit-bool"),
        pytest.param({"room": "lobby", "before": "nope"}, "before", id="before-malformed"),
        pytest.param({"room": "lobby", "before": 5}, "before", id="before-number"),
        pytest.param({"room": "bad room"}, "room", id="room-invalid"),
        pytest.param({"with": "bad user!"}, "with", id="with-invalid"),
        pytest.param({"with": 7}, "with", id="with-number"),
    ],
)
async def test_history_with_a_bad_field_answers_invalid_naming_it(
    serve: Serve, connect: Connect, request_: dict[str, Any], field: str
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    expect_error(await alice.call("history", request_), "invalid", field)


# -- keeping ------------------------------------------------------------------------------------


async def test_history_size_caps_what_a_room_keeps(serve: Serve, connect: Connect) -> None:
    url = await serve(history_size=4)
    alice = await connect(url, "alice")
    ids = await fill(alice, "lobby", 9)
    assert ids_of(await history(alice, room="lobby", limit=200)) == ids[-4:]


async def test_history_size_caps_what_a_conversation_keeps(serve: Serve, connect: Connect) -> None:
    url = await serve(history_size=4)
    alice = await connect(url, "alice")
    ids = [
        expect_ok(await alice.call("private_message", {"to": "bob", "text": str(i)}))["id"]
        for i in range(9)
    ]
    assert ids_of(await history(alice, **{"with": "bob", "limit": 200})) == ids[-4:]


async def test_history_size_applies_to_each_room_separately(
    serve: Serve, connect: Connect
) -> None:
    url = await serve(history_size=4)
    alice = await connect(url, "alice")
    lobby = await fill(alice, "lobby", 3)
    await fill(alice, "dev", 6)
    assert ids_of(await history(alice, room="lobby")) == lobby


async def test_nothing_acked_is_lost_when_sent_all_at_once(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alices = [await connect(url, "alice") for _ in range(3)]
    for client in alices:
        await join(client, "lobby")
    acks = await asyncio.gather(
        *(
            client.call("message", {"room": "lobby", "text": f"{n}-{i}"})
            for i in range(25)
            for n, client in enumerate(alices)
        )
    )
    acked = {expect_ok(ack)["id"] for ack in acks}
    kept = ids_of(await history(alices[0], room="lobby", limit=200))
    assert set(kept) == acked
    assert kept == sorted(kept)


async def test_ids_in_history_are_fixed_width_and_sorted(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    await fill(alice, "lobby", 20)
    ids = ids_of(await history(alice, room="lobby"))
    assert len({len(i) for i in ids}) == 1
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


async def test_ts_in_history_are_integer_ms_and_never_go_back(
    serve: Serve, connect: Connect
) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    await fill(alice, "lobby", 10)
    stamps = [m["ts"] for m in await history(alice, room="lobby")]
    assert all(type(ts) is int and ts > 1_600_000_000_000 for ts in stamps)
    assert stamps == sorted(stamps)


async def test_history_keeps_text_exactly_as_delivered(serve: Serve, connect: Connect) -> None:
    url = await serve()
    alice = await connect(url, "alice")
    await join(alice, "lobby")
    text = "<b>x</b> & \U0001f600 e\u0301\n  indented"
    expect_ok(await alice.call("message", {"room": "lobby", "text": f"  {text}  "}))
    assert [m["text"] for m in await history(alice, room="lobby")] == [text]
