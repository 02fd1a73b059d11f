"""Webhooks from one process: every event type, signed per the contract, never delaying an ack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.chat import expect_ok, http_call, join, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, MakeSettings, StartServer
from tests.support.ports import free_port
from tests.support.settings import API_KEY
from tests.support.webhooks import HOOK_SECRET, Receiver, receiver, signature_ok

AUTH = {"Authorization": f"Bearer {API_KEY}"}
#: Retries a test can wait out: 0.1 s, 0.2 s, then every 0.3 s.
FAST_RETRIES: dict[str, Any] = {"webhook_retry_base": 0.1, "webhook_retry_cap": 0.3}


@pytest.fixture
async def hooks() -> AsyncIterator[Receiver]:
    async with receiver() as hooks:
        yield hooks


def hooked(make_settings: MakeSettings, hooks: Receiver, **overrides: Any) -> Any:
    defaults = {"webhook_urls": (hooks.url,), "webhook_secret": HOOK_SECRET, **FAST_RETRIES}
    return make_settings(**{**defaults, **overrides})


@pytest.fixture
async def url(start_server: StartServer, backend_settings: MakeSettings, hooks: Receiver) -> str:
    """A server whose queue is in memory, then one whose queue is a Redis stream."""
    return await start_server(hooked(backend_settings, hooks))


async def metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    """The value of one unlabelled sample (or the sum over its labels) in /metrics."""
    async with http.get(f"{url}/metrics", headers=AUTH) as response:
        text = await response.text()
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
    ]
    return sum(values)


async def alice_in_a_room(connect: Connect, url: str) -> tuple[ChatClient, str]:
    """``alice`` connected to ``url`` and joined to a fresh room (one presence event)."""
    room = unique("room")
    alice = await connect(url, "alice")
    await join(alice, room)
    return alice, room


# -- what is posted -------------------------------------------------------------------


async def test_a_room_message_is_posted_signed_with_the_contract_headers(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    alice, room = await alice_in_a_room(connect, url)
    ack = expect_ok(await alice.call("message", {"room": room, "text": "hello"}))
    await hooks.until(lambda: bool(hooks.events("message")))
    (delivery,) = [d for d in hooks.deliveries if d.event["type"] == "message"]
    event = delivery.event
    assert set(event) == {"id", "type", "ts", "data"}
    assert event["data"]["id"] == ack["id"]
    assert {k: event["data"][k] for k in ("room", "from", "text", "ts")} == {
        "room": room,
        "from": "alice",
        "text": "hello",
        "ts": ack["ts"],
    }
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["Chat-Webhook-Id"] == event["id"]
    assert abs(int(delivery.headers["Chat-Webhook-Timestamp"]) - time.time()) < 30
    assert signature_ok(delivery)


async def test_a_signature_made_with_another_secret_does_not_verify(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    alice = await connect(url, "alice")
    await join(alice, unique("room"))
    await hooks.until(lambda: bool(hooks.deliveries))
    assert not signature_ok(hooks.deliveries[0], secret="another-secret")


async def test_a_private_message_to_a_connected_user_says_recipient_online(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    alice, bob = await connect(url, unique("alice")), await connect(url, unique("bob"))
    bob_name = (await bob.next("welcome"))["user"]
    expect_ok(await alice.call("private_message", {"to": bob_name, "text": "hi"}))
    data = (await hooks.next_event("private_message"))["data"]
    assert data["to"] == bob_name
    assert data["recipient_online"] is True


async def test_a_rest_private_message_to_a_user_not_connected_says_recipient_offline(
    url: str, hooks: Receiver, http: aiohttp.ClientSession
) -> None:
    to = unique("alice")
    body = {"to": to, "text": "you have mail"}
    status, _ = await http_call(http, "POST", f"{url}/api/emit", body, AUTH)
    assert status == 200
    data = (await hooks.next_event("private_message"))["data"]
    assert (data["to"], data["from"], data["recipient_online"]) == (to, "bot", False)


async def test_a_user_who_disconnected_is_no_longer_online(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    alice, bob = await connect(url, unique("alice")), await connect(url, unique("bob"))
    bob_name = (await bob.next("welcome"))["user"]
    await bob.close()
    expect_ok(await alice.call("private_message", {"to": bob_name, "text": "still there?"}))
    assert (await hooks.next_event("private_message"))["data"]["recipient_online"] is False


async def test_an_edit_is_posted_as_message_updated(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    alice, room = await alice_in_a_room(connect, url)
    sent = expect_ok(await alice.call("message", {"room": room, "text": "helo"}))
    expect_ok(await alice.call("edit", {"room": room, "id": sent["id"], "text": "hello"}))
    data = (await hooks.next_event("message_updated"))["data"]
    assert (data["id"], data["text"]) == (sent["id"], "hello")
    assert "edited_ts" in data


async def test_joining_and_leaving_are_posted_as_presence(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    alice, room = await alice_in_a_room(connect, url)
    expect_ok(await alice.call("leave", {"room": room}))
    await hooks.until(lambda: len(hooks.events("presence")) == 2)
    assert [e["data"] for e in hooks.events("presence")] == [
        {"room": room, "user": "alice", "action": "join"},
        {"room": room, "user": "alice", "action": "leave"},
    ]


async def test_a_topic_change_is_posted_as_room_updated(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    room = unique("room")
    alice = await connect(url, "alice")
    expect_ok(await alice.call("create_room", {"room": room}))
    expect_ok(await alice.call("set_topic", {"room": room, "topic": "webhooks"}))
    data = (await hooks.next_event("room_updated"))["data"]
    assert (data["name"], data["topic"], data["owner"]) == (room, "webhooks", "alice")


async def test_webhook_events_limits_the_types_posted(
    start_server: StartServer, make_settings: MakeSettings, hooks: Receiver, connect: Connect
) -> None:
    url = await start_server(hooked(make_settings, hooks, webhook_events=frozenset({"message"})))
    alice, room = await alice_in_a_room(connect, url)
    expect_ok(await alice.call("message", {"room": room, "text": "only this"}))
    await hooks.next_event("message")
    assert [e["type"] for e in hooks.events()] == ["message"]


async def test_every_url_gets_each_event_under_the_same_id(
    start_server: StartServer, make_settings: MakeSettings, hooks: Receiver, connect: Connect
) -> None:
    async with receiver() as other:
        settings = hooked(make_settings, hooks, webhook_urls=(hooks.url, other.url))
        url = await start_server(settings)
        alice = await connect(url, "alice")
        await join(alice, unique("room"))
        first, second = await hooks.next_event("presence"), await other.next_event("presence")
    assert first == second


# -- faults -----------------------------------------------------------------------------


async def test_a_receiver_that_sleeps_does_not_delay_the_ack(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    hooks.delay = 4.0
    alice, room = await alice_in_a_room(connect, url)
    await hooks.until(lambda: bool(hooks.attempts))  # the join's presence: the receiver sleeps
    asked = time.monotonic()
    expect_ok(await alice.call("message", {"room": room, "text": "not waiting"}))
    answered = time.monotonic()
    # Generous for a noisy machine, and still well inside the receiver's sleep.
    assert answered - asked < 2.0
    assert not hooks.deliveries
    await hooks.until(lambda: bool(hooks.events("message")), timeout=15)


async def test_a_receiver_answering_500_does_not_delay_the_ack(
    url: str, hooks: Receiver, connect: Connect
) -> None:
    hooks.status = 500
    alice, room = await alice_in_a_room(connect, url)
    await hooks.until(lambda: bool(hooks.attempts))
    asked = time.monotonic()
    expect_ok(await alice.call("message", {"room": room, "text": "not waiting"}))
    assert time.monotonic() - asked < 2.0


async def test_a_failed_delivery_is_retried_until_the_receiver_answers_2xx(
    url: str, hooks: Receiver, connect: Connect, http: aiohttp.ClientSession
) -> None:
    hooks.status = 503
    alice = await connect(url, "alice")
    await join(alice, unique("room"))
    await hooks.until(lambda: len(hooks.attempts) >= 3)
    hooks.status = 200
    event = await hooks.next_event("presence")
    ids = {d.event["id"] for d in hooks.attempts}
    assert ids == {event["id"]}
    assert await metric(http, url, "chat_webhook_retried_total") >= 2
    assert await metric(http, url, "chat_webhook_delivered_total") == 1


async def test_a_receiver_that_was_down_gets_every_event_once_it_is_back(
    start_server: StartServer, backend_settings: MakeSettings, connect: Connect
) -> None:
    # Nothing listens on the port at first: every attempt is refused, as when
    # the receiver is down; the retries (fast here) bring everything once it is up.
    port = free_port()
    settings = backend_settings(
        webhook_urls=(f"http://127.0.0.1:{port}/hook",),
        webhook_secret=HOOK_SECRET,
        webhook_events=frozenset({"message"}),
        **FAST_RETRIES,
    )
    url = await start_server(settings)
    alice, room = await alice_in_a_room(connect, url)
    sent = [
        expect_ok(await alice.call("message", {"room": room, "text": f"m{n}"}))["id"]
        for n in range(20)
    ]
    await asyncio.sleep(1.0)  # a few refused attempts of each
    async with receiver(port) as hooks:
        await hooks.until(lambda: len(hooks.events("message")) >= 20)
    delivered = [event["data"]["id"] for event in hooks.events("message")]
    assert sorted(set(delivered)) == sorted(sent)


async def test_a_receiver_that_never_answers_2xx_gets_the_event_dropped_and_counted(
    start_server: StartServer,
    make_settings: MakeSettings,
    hooks: Receiver,
    connect: Connect,
    http: aiohttp.ClientSession,
) -> None:
    url = await start_server(hooked(make_settings, hooks, webhook_max_age=1.0))
    hooks.status = 500
    alice = await connect(url, "alice")
    await join(alice, unique("room"))
    deadline = time.monotonic() + 10
    while await metric(http, url, "chat_webhook_dropped_total") < 1:
        assert time.monotonic() < deadline, "not dropped within 10 s"
        await asyncio.sleep(0.2)
    tried = len(hooks.attempts)
    assert tried >= 2
    await asyncio.sleep(1.0)
    assert len(hooks.attempts) == tried  # given up on: no attempt after the drop
    assert await metric(http, url, "chat_webhook_delivered_total") == 0


async def test_no_more_than_the_concurrency_cap_of_requests_go_to_one_url_at_once(
    start_server: StartServer,
    make_settings: MakeSettings,
    hooks: Receiver,
    http: aiohttp.ClientSession,
) -> None:
    url = await start_server(hooked(make_settings, hooks, webhook_concurrency=2))
    hooks.delay = 1.0  # long enough that the six emits arrive while two are answered
    room = unique("room")
    for n in range(6):
        body = {"room": room, "text": f"m{n}"}
        status, _ = await http_call(http, "POST", f"{url}/api/emit", body, AUTH)
        assert status == 200
    await hooks.until(lambda: len(hooks.events("message")) == 6)
    assert hooks.most_in_flight == 2


async def test_events_past_the_queue_size_are_dropped_and_counted(
    start_server: StartServer,
    make_settings: MakeSettings,
    hooks: Receiver,
    http: aiohttp.ClientSession,
) -> None:
    url = await start_server(hooked(make_settings, hooks, webhook_queue_size=2))
    hooks.delay = 2.0  # the first two stay in flight, filling the queue
    room = unique("room")
    for n in range(5):
        body = {"room": room, "text": f"m{n}"}
        status, _ = await http_call(http, "POST", f"{url}/api/emit", body, AUTH)
        assert status == 200  # the sender is never refused for it
    assert await metric(http, url, "chat_webhook_dropped_total") == 3
    assert await metric(http, url, "chat_webhook_queued_total") == 2
