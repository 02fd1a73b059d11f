"""Load generator: raw WebSocket clients speaking just enough Engine.IO/Socket.IO v5.

Each client is an ``asyncio.Protocol`` that parses server frames in place and
never builds a Python object per delivered message beyond two ints: the
generator must stay far cheaper than the servers it measures (its own CPU share
is measured and reported). Messages carry ``b|<sender>|<seq>|<send ns>|`` at
the start of their text, from which receivers check per-sender order and loss
and sample latency.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import random
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

try:
    import orjson

    _loads: Callable[[bytes | bytearray], Any] = orjson.loads
except ImportError:  # the generator also runs with the standard library only
    _loads = json.loads

from bench.servers import cpu_seconds, rss_bytes, settle

ROOM = "bench"
MSG_PREFIX = b'42["message",'
UPDATE_PREFIX = b'42["message_updated",'
TEXT_RE = re.compile(rb'"text":"b\|(\d+)\|(\d+)\|(\d+)\|')
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")
CONNECT_TIMEOUT = 30.0
DRAIN_TIMEOUT = 20.0
CALL_TIMEOUT = 30.0


def ws_frame(payload: bytes) -> bytes:
    """A masked text frame; an all-zero mask key leaves the payload as is (cheap)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class Client(asyncio.Protocol):
    """One Socket.IO connection over a raw WebSocket."""

    def __init__(self, port: int, auth: dict[str, Any], nsenders: int = 0) -> None:
        self.port = port
        self.auth = auth
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.acks: dict[int, Callable[[Any], None]] = {}
        self.next_ack = 0
        self.deliveries = 0  # every room `message` frame
        self.updates = 0  # every `message_updated` frame
        self.counts = [0] * nsenders  # deliveries per sender
        self.last = [-1] * nsenders  # highest sequence number seen per sender
        self.reordered = 0
        self.foreign = 0  # `message` frames without a bench marker
        self.latencies: list[int] | None = None
        self.on_delivery: Callable[[int, int], None] | None = None
        self.join_ack: Any = None  # the last `join` ack, kept by bench.handshakes

    def reset_senders(self, nsenders: int) -> None:
        self.counts = [0] * nsenders
        self.last = [-1] * nsenders

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before connecting"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                line = bytes(buf[: buf.find(b"\r\n")]).decode(errors="replace")
                self._fail(f"websocket refused: {line}")
                return
            del buf[: end + 4]
            self.upgraded = True
        now = time.monotonic_ns() if self.latencies is not None else 0
        pos, n = 0, len(buf)
        while n - pos >= 2:
            ln = buf[pos + 1] & 0x7F
            if ln < 126:
                start = pos + 2
            elif ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + ln
            if end > n:
                break
            if buf.startswith(MSG_PREFIX, start, end):
                self.deliveries += 1
                m = TEXT_RE.search(buf, start, end)
                if m is None:
                    self.foreign += 1
                else:
                    s, q = int(m[1]), int(m[2])
                    self.counts[s] += 1
                    if q < self.last[s]:
                        self.reordered += 1
                    else:
                        self.last[s] = q
                    if now:
                        self.latencies.append(now - int(m[3]))  # type: ignore[union-attr]
                    if self.on_delivery is not None:
                        self.on_delivery(s, q)
            elif buf.startswith(UPDATE_PREFIX, start, end):
                self.updates += 1
            elif buf[pos] & 0x0F == 1:
                self._packet(bytes(buf[start:end]))
            elif buf[pos] & 0x0F == 8:
                self._fail("server closed the websocket")
                return
            pos = end
        if pos:
            del buf[:pos]

    # -- Engine.IO / Socket.IO

    def _packet(self, p: bytes) -> None:
        if p.startswith(b"43"):
            i = p.index(b"[")
            callback = self.acks.pop(int(p[2:i]), None)
            if callback is not None:
                callback(_loads(p[i:]))
        elif p == b"2":
            self.send(b"3")
        elif p.startswith(b"0{"):
            self.send(b"40" + json.dumps(self.auth).encode())
        elif p.startswith(b"40"):
            if not self.ready.done():
                self.ready.set_result(None)
        elif p.startswith(b"44"):
            self._fail("connect_error " + p[2:].decode(errors="replace"))
        elif p.startswith(b"41") or p == b"1":
            self._fail("server disconnected the client")

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(payload))

    def emit(self, event: str, data: Any, callback: Callable[[Any], None] | None) -> None:
        body = json.dumps([event, data], separators=(",", ":")).encode()
        if callback is None:
            self.send(b"42" + body)
            return
        self.next_ack += 1
        self.acks[self.next_ack] = callback
        self.send(b"42" + str(self.next_ack).encode() + body)

    async def call(self, event: str, data: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(ack: Any) -> None:
            if not future.done():
                future.set_result(ack)

        self.emit(event, data, done)
        return (await asyncio.wait_for(future, CALL_TIMEOUT))[0]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int, auth: dict[str, Any], nsenders: int = 0) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: Client(port, auth, nsenders), "127.0.0.1", port
    )
    await asyncio.wait_for(client.ready, CONNECT_TIMEOUT)
    return client


async def connect_many(
    ports: Sequence[int], names: Sequence[str], nsenders: int, parallel: int = 64
) -> list[Client]:
    """Connect one client per name, round-robin over ``ports``, ``parallel`` at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(i: int, name: str) -> Client:
        async with gate:
            return await connect(ports[i % len(ports)], {"username": name}, nsenders)

    return await gather_clients([one(i, n) for i, n in enumerate(names)], "connections")


async def gather_clients(
    attempts: Sequence[Coroutine[Any, Any, Client]], what: str
) -> list[Client]:
    """Run every attempt at once; all the clients, or (closing them) the first error."""
    results = await asyncio.gather(*attempts, return_exceptions=True)
    clients = [c for c in results if isinstance(c, Client)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        for c in clients:
            c.close()
        raise RuntimeError(f"{len(errors)} of {len(attempts)} {what} failed: {errors[0]!r}")
    return clients


async def join_all(clients: Sequence[Client], parallel: int = 32) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(c: Client) -> None:
        async with gate:
            ack = await c.call("join", {"room": ROOM})
            if not ack.get("ok"):
                raise RuntimeError(f"join refused: {ack}")

    await asyncio.gather(*(one(c) for c in clients))


class Sender:
    """Sends room messages with at most ``window`` un-finished at a time.

    A message is finished once its ack arrived and every sentinel (the last
    receiver to join on each server process) has received it, so that the
    window bounds the server's fan-out backlog, not only its ack latency.
    """

    def __init__(
        self,
        index: int,
        client: Client,
        window: int,
        text_size: int,
        sentinels: int,
        *,
        client_ids: bool = False,
        change_every: int = 0,
    ) -> None:
        self.index = index
        self.client_ids = client_ids
        self.change_every = change_every
        self.changes = 0
        self.change_errors = 0
        self.client = client
        self.window = window
        self.pad = "x" * max(0, text_size - 32)
        self.sentinels = sentinels
        self.sent = 0
        self.acked = 0
        self.errors: list[Any] = []
        self.seen = [0] * sentinels  # per sentinel: highest seq + 1 it received
        self.running = False
        self.send_ns: list[int] = []

    def in_flight(self) -> int:
        return self.sent - min(self.acked, *self.seen) if self.seen else self.sent - self.acked

    def send_one(self, stamp_ns: int | None = None) -> None:
        """Send the next message, stamped ``stamp_ns`` (its scheduled time) or now."""
        seq = self.sent
        self.sent += 1
        stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
        text = f"b|{self.index}|{seq}|{stamp}|{self.pad}"
        payload = {"room": ROOM, "text": text}
        if self.client_ids:
            payload["client_id"] = f"{self.client.auth.get('username', 'c')}-{seq}"
        self.client.emit("message", payload, self._on_ack)

    def change(self, message_id: str) -> None:
        """An edit or a reaction of one of this sender's messages, in turn."""
        self.changes += 1
        if self.changes % 2:
            change = {"room": ROOM, "id": message_id, "text": f"edited {self.changes}"}
            self.client.emit("edit", change, self._on_change)
        else:
            reaction = {"room": ROOM, "id": message_id, "emoji": "👍", "add": True}
            self.client.emit("react", reaction, self._on_change)

    def _on_change(self, ack: Any) -> None:
        if not (isinstance(ack, list) and ack and isinstance(ack[0], dict) and ack[0].get("ok")):
            self.change_errors += 1

    def pump(self) -> None:
        if self.window <= 0:  # paced: a timer sends, not the window
            return
        while self.running and self.in_flight() < self.window:
            self.send_one()

    def _on_ack(self, ack: Any) -> None:
        if isinstance(ack, list) and ack and isinstance(ack[0], dict) and ack[0].get("ok"):
            self.acked += 1
            if self.change_every and self.acked % self.change_every == 0:
                self.change(ack[0]["id"])
        else:
            self.errors.append(ack)
            self.acked += 1
        self.pump()

    def sentinel_saw(self, which: int, seq: int) -> None:
        if seq + 1 > self.seen[which]:
            self.seen[which] = seq + 1
        self.pump()


def _percentile(sorted_values: Sequence[int], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[i] / 1e6


def _loadgen_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _drain(clients: Sequence[Client], expected: Sequence[int]) -> float:
    """Wait until every client has every message; returns how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < DRAIN_TIMEOUT:
        if all(c.counts == list(expected) for c in clients if not c.closed.done()):
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def _delivery_report(clients: Sequence[Client], expected: Sequence[int]) -> dict[str, Any]:
    want = sum(expected)
    lost = sum(max(0, want - sum(c.counts)) for c in clients)
    dup = sum(max(0, sum(c.counts) - want) for c in clients)
    return {
        "messages": want,
        "expected_deliveries": want * len(clients),
        "lost": lost,
        "duplicated": dup,
        "reordered": sum(c.reordered for c in clients),
        "foreign": sum(c.foreign for c in clients),
        "disconnected": sum(1 for c in clients if c.closed.done()),
    }


async def room_fanout(
    ports: Sequence[int],
    server_pids: Callable[[], list[int]],
    *,
    receivers: int,
    senders: int,
    window: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    rate: float | None = None,
    text_size: int = 64,
    batch_ms: float = 20.0,
    tag: str = "r",
    client_ids: bool = False,
    change_every: int = 0,
    scheduled: bool = False,
) -> dict[str, Any]:
    """Senders push room messages; every client in the room counts what it gets.

    With ``client_ids`` every message carries one; with ``change_every`` N,
    each sender edits or reacts to every Nth of its acknowledged messages, and
    the ``message_updated`` deliveries count with the messages.

    With ``rate`` the senders are paced (messages/s in total) and every delivery's
    latency is recorded; without it they send as fast as the window allows, and
    the generator reads its sockets every ``batch_ms`` only (see ``_batch_reads``).
    With ``scheduled`` (open loop) a paced message carries its scheduled send
    time rather than the moment it was written, so that a late sender (the
    generator's own queueing) counts in the latency too.
    """
    names = [f"{tag}{i}" for i in range(receivers - senders)]
    sender_names = [f"{tag}s{i}" for i in range(senders)]
    nprocs = len(ports)
    clients = await connect_many(ports, names, senders)
    sender_clients = await connect_many(ports, sender_names, senders)
    everyone = clients + sender_clients
    try:
        body = clients[: len(clients) - nprocs]
        sentinels = clients[len(clients) - nprocs :]
        await join_all(body)
        await join_all(sender_clients)
        for s in sentinels:  # last, so that they are last in every fan-out
            await join_all([s])
        await settle(server_pids())  # presence storms of the joins
        for c in everyone:
            c.reset_senders(senders)
        send = [
            Sender(
                i,
                c,
                window if rate is None else 0,
                text_size,
                len(sentinels),
                client_ids=client_ids,
                change_every=change_every,
            )
            for i, c in enumerate(sender_clients)
        ]
        for k, sentinel in enumerate(sentinels):
            sentinel.on_delivery = lambda si, q, k=k: send[si].sentinel_saw(k, q)
        paced: list[asyncio.Task[None]] = []
        if rate is None and batch_ms > 0:
            paced.append(asyncio.create_task(_batch_reads(batch_ms / 1000)))
        for sender in send:
            sender.running = True
            if rate is None:
                sender.pump()
            else:
                paced.append(
                    asyncio.create_task(_paced(sender, rate / senders, scheduled=scheduled))
                )
        await asyncio.sleep(warmup)
        pids = server_pids()
        if rate is not None:
            for c in everyone:
                c.latencies = []
        d0 = sum(c.deliveries + c.updates for c in everyone)
        c0, g0, t0 = cpu_seconds(pids), _loadgen_cpu(), time.monotonic()
        await asyncio.sleep(duration)
        d1 = sum(c.deliveries + c.updates for c in everyone)
        c1, g1, t1 = cpu_seconds(pids), _loadgen_cpu(), time.monotonic()
        latencies = sorted(x for c in everyone for x in (c.latencies or ()))
        for c in everyone:
            c.latencies = None
        for sender in send:
            sender.running = False
        for task in paced:
            task.cancel()
        expected = [s.sent for s in send]
        drain = await _drain(everyone, expected)
        wall = t1 - t0
        deliveries = d1 - d0
        cpu = c1 - c0
        result: dict[str, Any] = {
            "receivers": len(everyone),
            "senders": senders,
            "window": window,
            "rate": rate,
            "duration": wall,
            "deliveries": deliveries,
            "deliveries_per_s": deliveries / wall,
            "server_cpu_s": cpu,
            "server_cpu_share": cpu / wall,
            "cpu_s_per_100k": cpu / deliveries * 100_000 if deliveries else None,
            "loadgen_cpu_share": (g1 - g0) / wall,
            "drain_s": drain,
            "ack_errors": sum(len(s.errors) for s in send),
            "changes": sum(s.changes for s in send),
            "change_errors": sum(s.change_errors for s in send),
            "update_deliveries": sum(c.updates for c in everyone),
            "first_ack_error": next((s.errors[0] for s in send if s.errors), None),
            **_delivery_report(everyone, expected),
        }
        if rate is not None:
            result.update(
                latency_samples=len(latencies),
                p50_ms=_percentile(latencies, 0.50),
                p99_ms=_percentile(latencies, 0.99),
                max_ms=latencies[-1] / 1e6 if latencies else None,
            )
        return result
    finally:
        for c in everyone:
            c.close()
        await asyncio.sleep(0.2)


async def _batch_reads(seconds: float) -> None:
    """Block the loop for ``seconds`` between its turns, so that each socket read
    returns many frames at once.

    Most of a generator's cost is per read (a system call and a callback), not per
    frame; a loop that sleeps lets the kernel gather the server's frames, and the
    server, writing into socket buffers with room to spare, sees no difference.
    The window is large enough that these pauses never starve the server.
    """
    while True:
        time.sleep(seconds)  # noqa: ASYNC251 - the point is to hold the loop
        await asyncio.sleep(0)


async def _paced(sender: Sender, rate: float, *, scheduled: bool = False) -> None:
    # Scheduled times are kept in time.monotonic_ns(), the receivers' clock
    # (uvloop's loop.time() has a clock and a resolution of its own).
    # The open-loop senders start out of step with each other, as independent
    # users would; the older scenario's senders start together.
    interval = round(1e9 / rate)
    next_at = time.monotonic_ns() + (random.randrange(interval) if scheduled else 0)
    while sender.running:
        await asyncio.sleep(max(0, next_at - time.monotonic_ns()) / 1e9)
        if not sender.running:
            return
        sender.send_one(next_at if scheduled else None)
        next_at += interval


async def idle_memory(
    ports: Sequence[int],
    server_pids: Callable[[], list[int]],
    *,
    connections: int,
    tag: str = "idle",
) -> dict[str, Any]:
    """Server RSS growth per idle, connected Socket.IO client."""
    pids = server_pids()
    await settle(pids)
    before = rss_bytes(pids)
    t0 = time.monotonic()
    clients = await connect_many(ports, [f"{tag}{i}" for i in range(connections)], 0)
    connect_s = time.monotonic() - t0
    try:
        await settle(pids)
        await asyncio.sleep(0.5)
        after = rss_bytes(server_pids())
    finally:
        for c in clients:
            c.close()
        await asyncio.sleep(0.2)
    return {
        "connections": connections,
        "connect_s": connect_s,
        "rss_before_kib": before / 1024,
        "rss_after_kib": after / 1024,
        "kib_per_conn": (after - before) / 1024 / connections,
    }


class HttpEmitter(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection POSTing /api/emit, one request at a time."""

    def __init__(self, index: int, port: int, api_key: str, text_size: int) -> None:
        self.index = index
        self.port = port
        self.head = (
            f"POST /api/emit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.pad = "x" * max(0, text_size - 32)
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.running = False
        self.sent = 0
        self.ok = 0
        self.errors: list[str] = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.running = False
        if not self.lost.done():
            self.lost.set_result(None)

    def send_one(self) -> None:
        assert self.transport is not None
        text = f"b|{self.index}|{self.sent}|{time.monotonic_ns()}|{self.pad}"
        body = json.dumps({"room": ROOM, "text": text, "from": "bench"}).encode()
        self.sent += 1
        self.transport.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            m = _CONTENT_LENGTH.search(head)
            length = int(m[1]) if m else 0
            if len(buf) < end + 4 + length:
                return
            status = head[9:12]
            if status == b"200":
                self.ok += 1
            else:
                self.errors.append(bytes(buf[: end + 4 + length]).decode(errors="replace"))
            del buf[: end + 4 + length]
            if self.running:
                self.send_one()


async def rest_emit(
    ports: Sequence[int],
    server_pids: Callable[[], list[int]],
    *,
    api_key: str,
    receivers: int,
    connections: int,
    duration: float = 5.0,
    text_size: int = 64,
    tag: str = "rest",
) -> dict[str, Any]:
    """REST emits into a room: requests/s, server CPU per 1k requests, deliveries checked."""
    loop = asyncio.get_running_loop()
    clients = await connect_many(ports, [f"{tag}{i}" for i in range(receivers)], connections)
    emitters: list[HttpEmitter] = []
    try:
        await join_all(clients)
        await settle(server_pids())
        for i in range(connections):
            port = ports[i % len(ports)]
            _, e = await loop.create_connection(
                functools.partial(HttpEmitter, i, port, api_key, text_size),
                "127.0.0.1",
                port,
            )
            emitters.append(e)
        pids = server_pids()
        c0, g0, t0 = cpu_seconds(pids), _loadgen_cpu(), time.monotonic()
        for e in emitters:
            e.running = True
            e.send_one()
        await asyncio.sleep(duration)
        for e in emitters:
            e.running = False
        c1, g1, t1 = cpu_seconds(pids), _loadgen_cpu(), time.monotonic()
        in_window = sum(e.ok for e in emitters)
        wait_until = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < wait_until and any(  # noqa: ASYNC110 - polls counters
            e.ok + len(e.errors) < e.sent and not e.lost.done() for e in emitters
        ):
            await asyncio.sleep(0.02)
        expected = [e.ok for e in emitters]
        drain = await _drain(clients, expected)
        requests = in_window
        wall = t1 - t0
        cpu = c1 - c0
        return {
            "receivers": receivers,
            "connections": connections,
            "duration": wall,
            "requests": requests,
            "requests_per_s": requests / wall,
            "server_cpu_s": cpu,
            "cpu_ms_per_request": cpu / requests * 1000 if requests else None,
            "loadgen_cpu_share": (g1 - g0) / wall,
            "http_errors": sum(len(e.errors) for e in emitters),
            "first_http_error": next((e.errors[0] for e in emitters if e.errors), None),
            "drain_s": drain,
            **_delivery_report(clients, expected),
        }
    finally:
        for e in emitters:
            if e.transport is not None:
                e.transport.close()
        for c in clients:
            c.close()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0.2)
