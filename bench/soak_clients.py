"""The soak's clients: users that chat, leave, come back with ``since``, and keep count.

Each ``SoakUser`` is one person with one connection at a time, the way a
browser tab is: it joins its rooms, sends now and then, and when its
connection ends (the soak asks it to, or the server drops it) it comes back on
either process and re-joins each room with ``since`` = the largest id it holds,
and pages a private conversation's history back to that id. On ``resync`` it
does the same on the connection it has. ``Ledger`` is where everything that is
later counted is written down, with wall-clock times in milliseconds (the same
clock as Redis's, which stamps the ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

__all__ = ["Coverage", "Ledger", "SoakUser", "dm_key", "now_ms", "rest_bot"]

#: Seconds a call waits for its ack.
CALL_TIMEOUT = 8.0
#: Messages asked for per page when a private conversation is caught up.
PAGE = 100
#: Samples of each kind of anomaly kept for the report.
SAMPLES = 20


def now_ms() -> float:
    return time.time() * 1000.0


def dm_key(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


@dataclass(slots=True)
class Coverage:
    """One stretch in which a conversation reached one of a user's connections.

    ``live_from``: when live delivery may have started (the join was sent, or the
    connection was made for a private conversation); ``caught_up``: when the
    catch-up request (join with ``since``, or the history pages) was sent and
    answered; ``end``: when the connection ended (``None`` while it lasts).
    """

    live_from: float
    sent: float
    answered: float
    end: float | None = None


@dataclass(slots=True)
class Conversation:
    """What one user holds of one room or private conversation."""

    key: str
    first: str | None = None
    largest: str = ""
    seen: set[str] = field(default_factory=set)
    coverage: list[Coverage] = field(default_factory=list)

    def take(self, message_id: str) -> None:
        self.seen.add(message_id)
        if self.first is None or message_id < self.first:
            self.first = message_id
        self.largest = max(self.largest, message_id)


@dataclass
class Ledger:
    """Everything the report counts, written down as it happens."""

    ttl_ms: float
    ghost_slack_ms: float = 1500.0
    #: (time, kind, id, text) of every send answered ok:true
    acks: list[tuple[float, str, str, str]] = field(default_factory=list)
    #: (time, outcome, text) of every send answered as a failure; outcome is
    #: ``none``/``unknown`` for ``unavailable``, ``other:<code>``, or ``no-answer``
    failures: list[tuple[float, str, str]] = field(default_factory=list)
    #: (time, kind, detail) for duplicates and out-of-order deliveries
    anomalies: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    #: (time, detail) for every user listed in ``members`` while away longer than the TTL
    ghosts: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    #: user -> when its last connection ended; absent or None while connected
    offline_since: dict[str, float | None] = field(default_factory=dict)
    deliveries: int = 0
    connects: int = 0
    connect_failures: int = 0
    join_failures: int = 0
    catchup_failures: int = 0
    resyncs: int = 0
    unrecovered: int = 0
    not_sent: int = 0

    def check_members(self, room: str, members: list[Any], observer: str, at: float) -> None:
        for user in members:
            if not isinstance(user, str) or user == observer:
                continue
            since = self.offline_since.get(user)
            if since is not None and at - since > self.ttl_ms + self.ghost_slack_ms:
                detail = {"room": room, "user": user, "away_ms": round(at - since)}
                self.ghosts.append((at, {**detail, "observer": observer}))


class _Live:
    __slots__ = ("ids", "largest")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.largest = ""


class Connection:
    """One Socket.IO connection of a user, with what arrived on it live."""

    def __init__(self, user: SoakUser, url: str) -> None:
        self.user = user
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.live: dict[str, _Live] = {}
        self.dropped = asyncio.Event()
        self.ended: float | None = None
        self.coverage: list[Coverage] = []
        self.connected_at = 0.0
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.sio.on("message", self._on_message)
        self.sio.on("private_message", self._on_private)
        self.sio.on("resync", self._on_resync)
        self.sio.on("disconnect", self._on_disconnect)

    async def open(self) -> None:
        await self.sio.connect(
            self.url,
            auth={"username": self.user.name},
            transports=["websocket"],
            wait_timeout=5,
        )
        self.connected_at = now_ms()

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = await self.sio.call(event, payload, timeout=CALL_TIMEOUT)
        if not isinstance(reply, dict):
            raise RuntimeError(f"{event} answered {reply!r}")
        return reply

    def finish(self) -> None:
        """Note the end of this connection (once)."""
        if self.ended is None:
            self.ended = now_ms()
            for cov in self.coverage:
                cov.end = self.ended
            self.user.ledger.offline_since[self.user.name] = self.ended

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 5)
        self.finish()

    # Handlers are coroutines with no await: each runs to its end in arrival order.
    async def _on_message(self, data: Any) -> None:
        if isinstance(data, dict):
            self._take(f"room:{data.get('room')}", data)

    async def _on_private(self, data: Any) -> None:
        if isinstance(data, dict):
            self._take(dm_key(str(data.get("from")), str(data.get("to"))), data)

    def _take(self, key: str, data: dict[str, Any]) -> None:
        message_id = data.get("id")
        if not isinstance(message_id, str):
            return
        ledger = self.user.ledger
        ledger.deliveries += 1
        live = self.live.get(key)
        if live is None:
            live = self.live[key] = _Live()
        kind = None
        if message_id in live.ids:
            kind = "duplicate"
        elif message_id < live.largest:
            kind = "out_of_order"
        if kind is not None:
            detail = {
                "user": self.user.name,
                "conversation": key,
                "id": message_id,
                "after": live.largest,
                "port": self.port,
            }
            ledger.anomalies.append((now_ms(), kind, detail))
        live.ids.add(message_id)
        live.largest = max(live.largest, message_id)
        conv = self.user.conversations.get(key)
        if conv is not None:
            conv.take(message_id)

    async def _on_resync(self, data: Any) -> None:
        self.user.ledger.resyncs += 1
        # The ids to resume from are read now, before any later event is handled,
        # as the browser reads them when the event arrives.
        sinces = {key: conv.largest for key, conv in self.user.conversations.items()}
        self.user.spawn(self.user.catch_up(self, sinces))

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.finish()
        self.dropped.set()


class SoakUser:
    """One person: rooms, private partners, one connection at a time.

    :param pick_url: the URL of a live process to (re)connect to.
    :param room_interval: mean seconds between two room messages.
    :param private_interval: mean seconds between two private messages (if partners).
    """

    def __init__(
        self,
        name: str,
        rooms: list[str],
        partners: list[str],
        ledger: Ledger,
        pick_url: Callable[[], str],
        rng: random.Random,
        *,
        room_interval: float,
        private_interval: float,
    ) -> None:
        self.name = name
        self.rooms = rooms
        self.partners = partners
        self.ledger = ledger
        self.pick_url = pick_url
        self.rng = rng
        self.room_interval = room_interval
        self.private_interval = private_interval
        self.conversations = {f"room:{r}": Conversation(f"room:{r}") for r in rooms}
        for partner in partners:
            key = dm_key(name, partner)
            self.conversations[key] = Conversation(key)
        self.conn: Connection | None = None
        self.steady = False
        self._away: float | None = None
        self._churn = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sent = 0

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def churn(self, away: float) -> None:
        """Ask the user to drop its connection and come back after ``away`` seconds."""
        self._away = away
        self.steady = False
        self._churn.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect, chat, reconnect, until ``stopping`` is set."""
        while not stopping.is_set():
            conn = await self._connect()
            if conn is None:
                await _sleep_unless(stopping, self.rng.uniform(0.2, 0.6))
                continue
            sender: asyncio.Task[None] | None = None
            try:
                await self.catch_up(conn, {k: c.largest for k, c in self.conversations.items()})
                sender = asyncio.create_task(self._send_loop(conn))
                self.steady = not conn.dropped.is_set()
                waits = [
                    asyncio.create_task(e.wait()) for e in (conn.dropped, self._churn, stopping)
                ]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            finally:
                self.steady = False
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await sender
                # Leaving on purpose, a user waits for the answers to what it sent.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.idle.wait(), 0 if conn.dropped.is_set() else 3)
                await conn.close()
                self.conn = None
            if self._churn.is_set():
                self._churn.clear()
                await _sleep_unless(stopping, self._away or 0.0)
            elif not stopping.is_set():
                await _sleep_unless(stopping, self.rng.uniform(0.2, 1.0))

    async def final(self) -> bool:
        """One last catch-up on a new connection, as a user coming back would; True if done."""
        for _ in range(10):
            conn = await self._connect()
            if conn is None:
                await asyncio.sleep(0.5)
                continue
            try:
                ok = await self.catch_up(
                    conn, {k: c.largest for k, c in self.conversations.items()}
                )
            finally:
                await conn.close()
            if ok:
                return True
        return False

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _connect(self) -> Connection | None:
        conn = Connection(self, self.pick_url())
        try:
            await conn.open()
        except Exception:
            self.ledger.connect_failures += 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.sio.disconnect(), 2)
            return None
        self.ledger.connects += 1
        self.ledger.offline_since[self.name] = None
        self.conn = conn
        return conn

    async def catch_up(self, conn: Connection, sinces: dict[str, str]) -> bool:
        """Join every room with ``since`` and page back every private conversation."""
        results = await asyncio.gather(
            *(self._join(conn, room, sinces.get(f"room:{room}", "")) for room in self.rooms),
            *(self._refill(conn, p, sinces.get(dm_key(self.name, p), "")) for p in self.partners),
        )
        return all(results)

    async def _join(self, conn: Connection, room: str, since: str) -> bool:
        conv = self.conversations[f"room:{room}"]
        payload: dict[str, Any] = {"room": room}
        if since:
            payload["since"] = since
        for _ in range(20):
            if conn.dropped.is_set():
                return False
            sent = now_ms()
            try:
                ack = await conn.call("join", payload)
            except Exception:
                ack = {"ok": False}
            if ack.get("ok") is True:
                answered = now_ms()
                cov = Coverage(sent, sent, answered, conn.ended)
                conv.coverage.append(cov)
                conn.coverage.append(cov)
                if ack.get("recovered") is False:
                    self.ledger.unrecovered += 1
                for message in ack.get("history") or []:
                    if isinstance(message, dict) and isinstance(message.get("id"), str):
                        conv.take(message["id"])
                self.ledger.check_members(room, ack.get("members") or [], self.name, answered)
                return True
            self.ledger.join_failures += 1
            await asyncio.sleep(0.5)
        return False

    async def _refill(self, conn: Connection, partner: str, since: str) -> bool:
        conv = self.conversations[dm_key(self.name, partner)]
        for _ in range(20):
            if conn.dropped.is_set():
                return False
            sent = now_ms()
            try:
                page = await self._page(conn, partner, None, PAGE)
                collected, exhausted = page, len(page) < PAGE
                rounds = 0
                while since and not exhausted and collected[0] > since and rounds < 5:
                    page = await self._page(conn, partner, collected[0], 200)
                    collected, exhausted = page + collected, len(page) < 200
                    rounds += 1
            except Exception:
                self.ledger.catchup_failures += 1
                await asyncio.sleep(0.5)
                continue
            cov = Coverage(conn.connected_at, sent, now_ms(), conn.ended)
            conv.coverage.append(cov)
            conn.coverage.append(cov)
            for message_id in collected:
                conv.take(message_id)
            return True
        return False

    async def _page(
        self, conn: Connection, partner: str, before: str | None, limit: int
    ) -> list[str]:
        payload: dict[str, Any] = {"with": partner, "limit": limit}
        if before is not None:
            payload["before"] = before
        ack = await conn.call("history", payload)
        if ack.get("ok") is not True:
            raise RuntimeError(f"history answered {ack!r}")
        return [m["id"] for m in ack.get("messages") or [] if isinstance(m, dict)]

    async def _send_loop(self, conn: Connection) -> None:
        room_rate = 1.0 / self.room_interval
        private_rate = 1.0 / self.private_interval if self.partners else 0.0
        while not conn.dropped.is_set():
            await asyncio.sleep(self.rng.expovariate(room_rate + private_rate))
            self._sent += 1
            text = f"{self.name}#{self._sent}"
            if self.rng.random() < private_rate / (room_rate + private_rate):
                kind, event = "private", "private_message"
                payload = {"to": self.rng.choice(self.partners), "text": text}
            else:
                kind, event = "room", "message"
                payload = {"room": self.rng.choice(self.rooms), "text": text}
            self.spawn(self._send(conn, kind, event, payload))

    async def _send(
        self, conn: Connection, kind: str, event: str, payload: dict[str, Any]
    ) -> None:
        text = payload["text"]
        conn.inflight += 1
        conn.idle.clear()
        try:
            ack = await conn.call(event, payload)
        except TimeoutError:
            self.ledger.failures.append((now_ms(), "no-answer", text))
            return
        except Exception:
            self.ledger.not_sent += 1  # the connection was gone before it left
            return
        finally:
            conn.inflight -= 1
            if not conn.inflight:
                conn.idle.set()
        record_answer(self.ledger, kind, ack, text)


def record_answer(ledger: Ledger, kind: str, ack: dict[str, Any], text: str) -> None:
    at = now_ms()
    if ack.get("ok") is True and isinstance(ack.get("id"), str):
        ledger.acks.append((at, kind, ack["id"], text))
        return
    error = ack.get("error") if isinstance(ack.get("error"), dict) else {}
    assert isinstance(error, dict)
    if error.get("code") == "unavailable":
        ledger.failures.append((at, str(error.get("outcome")), text))
    else:
        ledger.failures.append((at, f"other:{error.get('code')}", text))


async def rest_bot(
    ledger: Ledger,
    pick_url: Callable[[], str],
    rooms: list[str],
    api_key: str,
    rate: float,
    stopping: asyncio.Event,
    rng: random.Random,
) -> None:
    """``POST /api/emit`` into random rooms, ``rate`` times a second, as user ``bot``."""
    headers = {"Authorization": f"Bearer {api_key}"}
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)
    sent = 0
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        while not stopping.is_set():
            await _sleep_unless(stopping, rng.expovariate(rate))
            if stopping.is_set():
                break
            sent += 1
            text = f"bot#{sent}"
            body = {"room": rng.choice(rooms), "text": text, "from": "bot"}
            try:
                async with http.post(f"{pick_url()}/api/emit", json=body) as response:
                    answer = await response.json(content_type=None)
            except (aiohttp.ClientConnectorError, ConnectionRefusedError):
                ledger.not_sent += 1  # no process to take it
                continue
            except (TimeoutError, aiohttp.ClientError, ValueError):
                ledger.failures.append((now_ms(), "no-answer", text))
                continue
            if isinstance(answer, dict):
                record_answer(ledger, "rest", answer, text)
            else:
                ledger.failures.append((now_ms(), "no-answer", text))


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
