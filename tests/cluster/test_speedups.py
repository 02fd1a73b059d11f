"""Each speed-up switched off leaves the chat the same: one production path, tested both ways.

Two real processes over one real Redis run with one speed-up off (or none);
room messages from both sides reach every member in id order and private
messages cross processes, exactly as with every speed-up on.
"""

from __future__ import annotations

import pytest

from chat_server.core.settings import SPEEDUPS
from tests.support.chat import expect_ok, join, unique
from tests.support.fixtures import Connect, StartProcesses

pytestmark = pytest.mark.redis

BURST = 20


@pytest.mark.parametrize("off", ["", *SPEEDUPS], ids=["all-on", *(f"{s}-off" for s in SPEEDUPS)])
async def test_room_messages_cross_processes_in_id_order_with_the_speedup_off(
    off: str, server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2, env={"CHAT_SPEEDUPS_OFF": off})
    room = unique("room")
    on_first, on_second = (
        await connect(first.url, unique("a")),
        await connect(second.url, unique("b")),
    )
    await join(on_first, room)
    await join(on_second, room)
    sent = []
    for n in range(BURST):
        sender = on_first if n % 2 else on_second
        sent.append(expect_ok(await sender.call("message", {"room": room, "text": f"m{n}"}))["id"])
    for client in (on_first, on_second):
        received = [(await client.next("message"))["id"] for _ in range(BURST)]
        assert received == sent


@pytest.mark.parametrize("off", ["", *SPEEDUPS], ids=["all-on", *(f"{s}-off" for s in SPEEDUPS)])
async def test_private_messages_cross_processes_with_the_speedup_off(
    off: str, server_processes: StartProcesses, connect: Connect
) -> None:
    first, second = await server_processes(2, env={"CHAT_SPEEDUPS_OFF": off})
    alice, bob = unique("alice"), unique("bob")
    on_first, on_second = await connect(first.url, alice), await connect(second.url, bob)
    ack = expect_ok(await on_first.call("private_message", {"to": bob, "text": "psst"}))
    received = await on_second.next("private_message")
    assert (received["id"], received["from"], received["text"]) == (ack["id"], alice, "psst")
