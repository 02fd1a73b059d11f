"""Each connection gets a conversation's messages in id order: `join {since}` misses nothing.

Real processes over a real Redis; senders on both processes send at once, and
receivers on both processes check that no message ever reaches them after one
with a larger id of the same room or private conversation.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from typing import Any

import pytest

from tests.support.chat import alice_and_bob_in_a_room, expect_ok, join, unique
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartProcesses
from tests.support.redis import RedisServer, kill_subscriptions

pytestmark = pytest.mark.redis

#: Each sender's messages; senders run concurrently.
PER_SENDER = 40


def _ids(events: list[Any]) -> list[str]:
    return [event["id"] for event in events]


async def _collect(client: ChatClient, event: str, count: int) -> list[Any]:
    return [await client.next(event, timeout=10) for _ in range(count)]


async def _send_all(sender: ChatClient, room: str, count: int) -> list[str]:
    acks = await asyncio.gather(
        *(sender.call("message", {"room": room, "text": f"n{n}"}) for n in range(count))
    )
    return [expect_ok(ack)["id"] for ack in acks]


async def test_concurrent_senders_on_two_processes_reach_every_member_in_id_order(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2)
    room = unique("room")
    senders = [await connect(url, unique("s")) for url in (one.url, two.url, one.url, two.url)]
    receivers = [await connect(url, unique("r")) for url in (one.url, two.url)]
    for client in (*senders, *receivers):
        await join(client, room)
    sent = await asyncio.gather(*(_send_all(s, room, PER_SENDER) for s in senders))
    total = sum(len(ids) for ids in sent)
    for client in (*receivers, *senders):
        received = _ids(await _collect(client, "message", total))
        assert received == sorted(received), "a message arrived after a larger id"
        assert sorted(received) == sorted(i for ids in sent for i in ids)


async def test_a_private_conversation_reaches_both_users_in_id_order_across_processes(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2)
    alice, bob = unique("alice"), unique("bob")
    alice_here, alice_there = await connect(one.url, alice), await connect(two.url, alice)
    bob_there = await connect(two.url, bob)

    async def send(client: ChatClient, to: str) -> list[str]:
        acks = await asyncio.gather(
            *(client.call("private_message", {"to": to, "text": f"p{n}"}) for n in range(30))
        )
        return [expect_ok(ack)["id"] for ack in acks]

    sent = await asyncio.gather(
        send(alice_here, bob), send(bob_there, alice), send(alice_there, bob)
    )
    for client in (alice_here, alice_there, bob_there):
        received = _ids(await _collect(client, "private_message", 90))
        assert received == sorted(received)
        assert set(received) == {i for ids in sent for i in ids}


async def test_a_send_refused_while_redis_is_known_down_says_nothing_was_stored(
    server_processes: StartProcesses, fresh_redis: RedisServer, connect: Connect
) -> None:
    (one,) = await server_processes(1, redis_url=fresh_redis.url)
    room = unique("room")
    alice = await connect(one.url, unique("alice"))
    await join(alice, room)
    fresh_redis.kill()
    deadline = time.monotonic() + 10
    while True:
        ack = await alice.call("message", {"room": room, "text": "down"})
        if ack["ok"] is False and ack["error"].get("outcome") == "none":
            break
        assert time.monotonic() < deadline, ack
        await asyncio.sleep(0.2)
    assert ack["error"]["code"] == "unavailable"


async def test_a_send_that_timed_out_on_a_frozen_redis_has_an_unknown_outcome(
    server_processes: StartProcesses, fresh_redis: RedisServer, connect: Connect
) -> None:
    (one,) = await server_processes(1, redis_url=fresh_redis.url)
    room = unique("room")
    alice = await connect(one.url, unique("alice"))
    await join(alice, room)
    fresh_redis.pause()
    try:
        ack = await alice.call("message", {"room": room, "text": "frozen"}, timeout=10)
    finally:
        fresh_redis.resume()
    assert ack["ok"] is False
    assert (ack["error"]["code"], ack["error"]["outcome"]) == ("unavailable", "unknown")


# -- churn: reconnecting clients miss nothing that is kept --------------------------------------


class Reconnecter:
    """A client that keeps leaving and coming back, resuming with the largest id it saw."""

    def __init__(self, connect: Connect, urls: list[str], room: str) -> None:
        self.connect, self.urls, self.room = connect, urls, room
        self.user = unique("churn")
        self.seen: set[str] = set()
        self.out_of_order = 0
        self.largest = ""

    def _take(self, message: Any) -> None:
        # A live copy of what the join's history already held is no reordering.
        if message["id"] in self.seen:
            return
        if message["id"] < self.largest:
            self.out_of_order += 1
        self.largest = max(self.largest, message["id"])
        self.seen.add(message["id"])

    async def run(self, until: float) -> None:
        rounds = 0
        while time.monotonic() < until:
            url = self.urls[rounds % len(self.urls)]
            rounds += 1
            client = await self.connect(url, self.user)
            since = {"since": self.largest} if self.largest else {}
            ack = await join(client, self.room, **since)
            for message in ack["history"]:
                self.seen.add(message["id"])
                self.largest = max(self.largest, message["id"])
            stay = time.monotonic() + random.uniform(0.1, 0.6)
            while time.monotonic() < stay:
                for message in client.pending("message"):
                    self._take(message)
                await asyncio.sleep(0.02)
            for message in client.pending("message"):
                self._take(message)
            await client.close()


async def test_clients_reconnecting_with_since_miss_no_kept_message_while_others_send(
    server_processes: StartProcesses, connect: Connect
) -> None:
    one, two = await server_processes(2, env={"CHAT_HISTORY_SIZE": "5000"})
    urls = [one.url, two.url]
    room = unique("room")
    senders = [await connect(url, unique("s")) for url in urls * 2]
    for sender in senders:
        await join(sender, room)
    churners = [Reconnecter(connect, urls, room) for _ in range(12)]
    stop = time.monotonic() + 6
    acked: list[str] = []

    async def keep_sending(sender: ChatClient) -> None:
        while time.monotonic() < stop:
            ack = await sender.call("message", {"room": room, "text": "x"})
            acked.append(expect_ok(ack)["id"])
            await asyncio.sleep(0.01)

    await asyncio.gather(*(keep_sending(s) for s in senders), *(c.run(stop) for c in churners))
    # One last rejoin each, as a client coming back after the burst would.
    for churner in churners:
        client = await connect(one.url, churner.user)
        for message in (await join(client, room, since=churner.largest))["history"]:
            churner.seen.add(message["id"])
    stored = set(acked)
    assert len(stored) > 500
    for churner in churners:
        first = min(churner.seen)
        owed = {i for i in stored if i >= first}
        assert owed - churner.seen == set(), f"{len(owed - churner.seen)} owed, never seen"
        assert churner.out_of_order == 0


# -- a lost subscription's gap ------------------------------------------------------------


async def _heard_by(client: ChatClient, room: str, acked: set[str]) -> None:
    """Send from ``client`` until it hears one of its messages live (its process is subscribed)."""
    deadline = time.monotonic() + 15
    client.pending("message")
    sent: set[str] = set()
    while not any(m["id"] in sent for m in client.pending("message")):
        assert time.monotonic() < deadline, "the sender's process never subscribed again"
        sent.add(expect_ok(await client.call("message", {"room": room, "text": "gap"}))["id"])
        acked |= sent
        await asyncio.sleep(0.05)


async def test_what_a_cut_off_process_missed_reaches_its_clients_in_order_without_a_rejoin(
    server_processes: StartProcesses, fresh_redis: RedisServer, connect: Connect
) -> None:
    one, two = await server_processes(2, redis_url=fresh_redis.url)
    alice, bob, room, first = await alice_and_bob_in_a_room((one.url, two.url), connect)
    acked = {first["id"]}
    assert two.pid is not None
    # Stopped, process two cannot read what Redis sends it; killing its
    # subscription then discards that, so everything until it is back is lost
    # to live delivery.
    os.kill(two.pid, signal.SIGSTOP)
    try:
        await kill_subscriptions(fresh_redis.url)
        await _heard_by(alice, room, acked)
        private = await alice.call("private_message", {"to": "bob", "text": "while away"})
    finally:
        os.kill(two.pid, signal.SIGCONT)
    assert await bob.next("resync", timeout=10) == {"reason": "redis"}
    last = expect_ok(await alice.call("message", {"room": room, "text": "after"}))["id"]
    await bob.next_where("message", lambda m: m["id"] == last, timeout=10)
    live = [p["id"] for e, p in bob.log if e == "message"]
    assert live == sorted(live) and len(live) == len(set(live))
    assert set(live) == acked | {last}
    events = [e for e, p in bob.log if e in ("resync", "private_message")]
    assert events == ["private_message", "resync"]
    assert [p["id"] for e, p in bob.log if e == "private_message"] == [expect_ok(private)["id"]]
