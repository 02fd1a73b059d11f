"""Each connection's outgoing queue, bounded in bytes, as python-engineio's writer uses it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet

__all__ = ["DELIVERED_KINDS", "SendQueue", "packet_size"]

#: Events whose deliveries ``chat_messages_delivered_total`` counts.
DELIVERED_KINDS = ("message", "private_message", "announcement")


def packet_size(item: Any) -> int:
    """Bytes an Engine.IO packet takes on the wire (about: framing aside)."""
    if item is None:
        return 0
    data = item.data
    if isinstance(data, str):
        # isascii() is O(1) in CPython, so the common case costs nothing more.
        return 1 + (len(data) if data.isascii() else len(data.encode("utf-8", "replace")))
    if isinstance(data, bytes | bytearray):
        return 1 + len(data)
    if data is None:
        return 1
    return 64  # the OPEN packet's small dict


class SendQueue:
    """A connection's outgoing queue that knows how many bytes it holds.

    :param limit: bytes it may hold; a packet that would take it past the limit
        (while it holds anything at all) is not queued, ``overflowed`` becomes
        true and ``on_overflow(queue)`` is called once.
    :param on_overflow: called when the limit is first exceeded.
    :param on_delivered: called with the event name of each chat packet
        (``message``, ``private_message``, ``announcement``) queued.
    :param on_open: called with the session's OPEN packet before it is queued.

    A packet larger than the limit is still taken when the queue is empty, so
    that a small limit delays rather than forbids a large join answer.

    python-engineio's WebSocket writer takes *everything* queued at once and
    then writes it packet by packet, waiting on the TCP transport; with a
    client that stopped reading, the backlog sits in the writer's hands, not
    in the queue. So with ``writes_on_send`` (set by the WebSocket driver) a
    packet's bytes stay counted until ``sent()`` says it was written.

    It implements the part of ``asyncio.Queue`` that python-engineio uses
    (``put``, ``put_nowait``, ``get``, ``get_nowait``, ``task_done``,
    ``join``, ``empty``, ``qsize``), unbounded, with ``asyncio.Queue``'s
    wake-up order. An ``asyncio.Queue`` holds three deques and an ``Event``
    (another deque), about 2.5 KiB before its first packet, for every idle
    connection; here a deque exists only while it holds something.
    """

    __slots__ = (
        "_getters",
        "_items",
        "_joiners",
        "_on_delivered",
        "_on_open",
        "_on_overflow",
        "_unfinished",
        "_unsent",
        "limit",
        "nbytes",
        "overflowed",
        "writes_on_send",
    )

    def __init__(
        self,
        limit: int,
        on_overflow: Callable[[SendQueue], None],
        on_delivered: Callable[[str], None] | None = None,
        on_open: Callable[[Any], None] | None = None,
    ) -> None:
        self.limit = limit
        self.nbytes = 0
        self.overflowed = False
        self._on_overflow = on_overflow
        self._on_delivered = on_delivered
        self._on_open = on_open
        self.writes_on_send = False
        self._items: collections.deque[Any] | None = None
        #: Futures of ``get()`` calls waiting for a packet, oldest first.
        self._getters: list[asyncio.Future[None]] = []
        self._unsent: collections.deque[int] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def parked(self) -> bool:
        """Whether the queue is empty and a consumer is waiting in ``get()``."""
        return not self._items and bool(self._getters)

    def put_nowait(self, item: Any) -> None:
        size = packet_size(item)
        if item is not None and (
            self.overflowed or (self.nbytes and self.nbytes + size > self.limit)
        ):
            if not self.overflowed:
                self.overflowed = True
                self._on_overflow(self)
            return
        if item is not None and item.packet_type == eio_packet.OPEN and self._on_open is not None:
            self._on_open(item)
        if self._on_delivered is not None and item is not None:
            kind = _chat_kind(item)
            if kind is not None:
                self._on_delivered(kind)
        self._force_put(item, size)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def force_put(self, item: Any) -> None:
        """Queue ``item`` whatever the limit (goodbyes and the writer's end marker)."""
        self._force_put(item, packet_size(item))

    def _force_put(self, item: Any, size: int) -> None:
        self.nbytes += size
        items = self._items
        if items is None:
            items = self._items = collections.deque()
        items.append(item)
        self._unfinished += 1
        self._wake_getter()

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        # Packets are not changed once queued, so their size is the same as
        # when they were put, without keeping it.
        size = packet_size(item)
        if self.writes_on_send and item is not None:
            unsent = self._unsent
            if unsent is None:
                unsent = self._unsent = collections.deque()
            unsent.append(size)
        else:
            self.nbytes -= size
        return item

    async def get(self) -> Any:
        while not self._items:
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    # Woken and cancelled in the same turn: pass the wake-up on.
                    self._wake_getter()
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners is not None:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished > 0:
            joiner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner

    def sent(self) -> None:
        """The oldest packet taken from the queue has been written to the transport."""
        unsent = self._unsent
        if unsent:
            self.nbytes -= unsent.popleft()
            if not unsent:
                self._unsent = None

    def discard(self) -> None:
        """Forget every queued packet (the connection is being dropped)."""
        with contextlib.suppress(asyncio.QueueEmpty, ValueError):
            while True:
                self.get_nowait()
                self.task_done()
        self._unsent = None
        self.nbytes = 0


def _chat_kind(item: Any) -> str | None:
    data = item.data
    # A Socket.IO EVENT for "/" is encoded as 2["name",...].
    if item.packet_type != eio_packet.MESSAGE or not isinstance(data, str):
        return None
    if not data.startswith('2["'):
        return None
    end = data.find('"', 3, 24)
    name = data[3:end] if end > 0 else ""
    return name if name in DELIVERED_KINDS else None
