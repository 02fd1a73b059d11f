"""Two chats on one Redis, in different databases, stay apart."""

from __future__ import annotations

import pytest

from chat_server.transport.bus import pubsub_channel
from tests.support.chat import expect_ok, join, unique
from tests.support.fixtures import Connect, StartServer
from tests.support.settings import chat_settings


def test_each_database_has_its_own_pubsub_channel() -> None:
    assert pubsub_channel("redis://h:6379/0") != pubsub_channel("redis://h:6379/1")
    assert pubsub_channel("redis://h:6379") == pubsub_channel("redis://h:6379/0")
    assert pubsub_channel("unix:///tmp/r.sock?db=2") == pubsub_channel("redis://h/2")


@pytest.mark.plain_redis(
    "a Redis Cluster has database 0 only (redis+cluster:// with /1 is refused)"
)
async def test_a_chat_in_another_database_does_not_see_our_messages(
    redis_url: str, start_server: StartServer, connect: Connect
) -> None:
    other_db = redis_url.rsplit("/", 1)[0] + "/1"
    ours = await start_server(chat_settings(redis_url=redis_url))
    theirs = await start_server(chat_settings(redis_url=other_db))
    room = unique("room")
    alice = await connect(ours, "alice")
    bob = await connect(theirs, "bob")
    await join(alice, room)
    await join(bob, room)
    expect_ok(await alice.call("message", {"room": room, "text": "only for db 0"}))
    await alice.next("message")
    await bob.no_event("message", within=0.5)
