"""Unit tests of the transport guards: packet screening and the byte-counting send queue."""

from __future__ import annotations

import asyncio

import pytest
from engineio import packet as eio_packet

from chat_server.transport.screening import screen_packet
from chat_server.transport.sendqueue import SendQueue


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        ('42["join",{"room":"a"}]', None),
        ("2", None),
        ("3probe", None),
        ("6", None),
        ("", "malformed"),
        ("hello", "malformed"),
        ("9", "malformed"),
        ("bAAEC", "binary"),
        ('451-["x",{"_placeholder":true,"num":0}]', "binary"),
        ('461-1[{"_placeholder":true,"num":0}]', "binary"),
        ("47", None),  # unknown Socket.IO type: left to the Socket.IO guard
    ],
)
def test_screen_packet_names_what_is_wrong(packet: str, reason: str | None) -> None:
    assert screen_packet(packet) == reason


def message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


class Recorder:
    def __init__(self) -> None:
        self.overflowed: list[SendQueue] = []
        self.delivered: list[str] = []

    def overflow(self, queue: SendQueue) -> None:
        self.overflowed.append(queue)

    def deliver(self, kind: str) -> None:
        self.delivered.append(kind)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def test_queue_counts_utf8_bytes_in_and_out(recorder: Recorder) -> None:
    queue = SendQueue(1000, recorder.overflow)
    queue.put_nowait(message("abc"))
    queue.put_nowait(message("\u00e9\U0001f600"))  # 2 + 4 bytes
    assert queue.nbytes == (1 + 3) + (1 + 6)
    queue.get_nowait()
    assert queue.nbytes == 7
    queue.get_nowait()
    assert queue.nbytes == 0


async def test_queue_refuses_past_its_limit_and_reports_overflow_once(recorder: Recorder) -> None:
    queue = SendQueue(100, recorder.overflow)
    queue.put_nowait(message("x" * 60))
    queue.put_nowait(message("x" * 60))
    queue.put_nowait(message("x" * 10))
    assert queue.qsize() == 1
    assert queue.overflowed
    assert recorder.overflowed == [queue]


async def test_queue_takes_one_oversized_packet_when_empty(recorder: Recorder) -> None:
    queue = SendQueue(10, recorder.overflow)
    queue.put_nowait(message("x" * 500))
    assert queue.qsize() == 1
    assert not queue.overflowed


async def test_force_put_ignores_the_limit(recorder: Recorder) -> None:
    queue = SendQueue(10, recorder.overflow)
    queue.put_nowait(message("x" * 500))
    queue.force_put(message("1"))
    queue.force_put(None)
    assert queue.qsize() == 3
    assert not recorder.overflowed


async def test_with_writes_on_send_bytes_stay_counted_until_sent(recorder: Recorder) -> None:
    queue = SendQueue(1000, recorder.overflow)
    queue.writes_on_send = True
    queue.put_nowait(message("abc"))
    queue.put_nowait(message("defg"))
    queue.get_nowait()
    queue.get_nowait()
    assert queue.nbytes == 4 + 5
    queue.sent()
    assert queue.nbytes == 5
    queue.sent()
    assert queue.nbytes == 0


async def test_a_writer_holding_its_batch_still_counts_against_the_limit(
    recorder: Recorder,
) -> None:
    queue = SendQueue(100, recorder.overflow)
    queue.writes_on_send = True
    for _ in range(2):
        queue.put_nowait(message("x" * 40))
    queue.get_nowait()
    queue.get_nowait()  # taken by the writer, stuck writing the first
    queue.put_nowait(message("x" * 40))
    assert queue.overflowed


async def test_discard_forgets_everything(recorder: Recorder) -> None:
    queue = SendQueue(1000, recorder.overflow)
    queue.writes_on_send = True
    queue.put_nowait(message("abc"))
    queue.put_nowait(message("abc"))
    queue.get_nowait()
    queue.discard()
    assert queue.qsize() == 0
    assert queue.nbytes == 0


async def test_chat_packets_are_reported_by_kind(recorder: Recorder) -> None:
    queue = SendQueue(10_000, recorder.overflow, recorder.deliver)
    queue.put_nowait(message('2["message",{"id":"1"}]'))
    queue.put_nowait(message('2["typing",{"room":"a"}]'))
    queue.put_nowait(message('2["announcement",{}]'))
    queue.put_nowait(message('3["private_message"]'))
    queue.put_nowait(eio_packet.Packet(eio_packet.PING))
    assert recorder.delivered == ["message", "announcement"]


async def test_get_waits_for_the_next_packet(recorder: Recorder) -> None:
    queue = SendQueue(1000, recorder.overflow)
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert queue.parked()
    queue.put_nowait(message("abc"))
    assert (await getter).data == "abc"
    assert not queue.parked()


async def test_a_get_cancelled_after_its_wake_up_passes_the_packet_on(
    recorder: Recorder,
) -> None:
    queue = SendQueue(1000, recorder.overflow)
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(message("abc"))
    first.cancel()
    assert (await second).data == "abc"


async def test_join_returns_once_every_packet_taken_is_done(recorder: Recorder) -> None:
    queue = SendQueue(1000, recorder.overflow)
    queue.put_nowait(message("abc"))
    joined = asyncio.ensure_future(queue.join())
    queue.get_nowait()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
