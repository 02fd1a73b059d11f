"""Raw Engine.IO v4 / Socket.IO v5 frames for the protocol conformance tests.

Everything here speaks the wire format by hand (aiohttp WebSockets and plain
HTTP requests), so a test can send exactly what a protocol sentence talks
about and see exactly what comes back: no Socket.IO client library answers
pings, retries or reorders anything behind the test's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp

__all__ = [
    "SEP",
    "Polling",
    "Wire",
    "endpoint",
    "packets",
]

#: The record separator joining packets in a long-polling payload.
SEP = "\x1e"
#: Seconds any single wait of these helpers lasts unless told otherwise.
WAIT = 3.0


def endpoint(base_url: str, query: str = "EIO=4&transport=polling", *, ws: bool = False) -> str:
    """The Socket.IO endpoint of ``base_url`` with ``query`` exactly as given."""
    url = f"{base_url}/socket.io/?{query}" if query else f"{base_url}/socket.io/"
    return "ws" + url[4:] if ws and url.startswith("http") else url


def packets(payload: str) -> list[str]:
    """The packets of one long-polling payload."""
    return payload.split(SEP)


def open_payload(packet: str) -> dict[str, Any]:
    """The JSON object of an Engine.IO ``open`` packet (``0{...}``)."""
    assert packet.startswith("0"), f"expected an open packet, got {packet!r}"
    value = json.loads(packet[1:])
    assert isinstance(value, dict), f"open packet payload is not an object: {packet!r}"
    return value


class Wire:
    """One WebSocket to the Socket.IO endpoint; nothing is answered unless asked.

    Unlike ``tests.support.rawio.RawSocket`` it does not answer pings by
    itself (``pong=True`` on a read does), and it records every text frame
    and how the connection ended, so a failing test can say what it saw.
    """

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.frames: list[str | bytes] = []
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, base_url: str, query: str = "EIO=4&transport=websocket") -> Wire:
        """Open the WebSocket (raises ``aiohttp.WSServerHandshakeError`` if refused)."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                endpoint(base_url, query, ws=True), max_msg_size=0, autoping=True
            )
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    @classmethod
    async def opened(cls, base_url: str, query: str = "EIO=4&transport=websocket") -> Wire:
        """A WebSocket whose Engine.IO ``open`` packet has been read (see ``handshake``)."""
        wire = await cls.connect(base_url, query)
        try:
            wire.handshake = open_payload(await wire.expect())
        except BaseException:
            await wire.close()
            raise
        return wire

    @classmethod
    async def joined(cls, base_url: str, username: str = "alice") -> Wire:
        """A WebSocket connected to the default namespace, ``welcome`` already read."""
        wire = await cls.opened(base_url)
        try:
            await wire.send("40" + json.dumps({"username": username}))
            reply = await wire.expect(pong=True)
            assert reply.startswith("40{"), f"CONNECT refused: {reply!r}"
            wire.namespace_sid = str(json.loads(reply[2:])["sid"])
            welcome = await wire.expect(pong=True)
            assert welcome.startswith('42["welcome"'), f"expected welcome, got {welcome!r}"
        except BaseException:
            await wire.close()
            raise
        return wire

    #: The ``open`` packet's payload (``opened`` and ``joined``).
    handshake: dict[str, Any]
    #: The Socket.IO sid of the CONNECT reply (``joined``).
    namespace_sid: str | None = None

    async def send(self, frame: str | bytes) -> None:
        """One WebSocket frame: text for ``str``, binary for ``bytes``."""
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def read(self, timeout: float = WAIT, *, pong: bool = False) -> str | bytes | None:  # noqa: ASYNC109
        """The next data frame, ``None`` once the connection closed.

        Raises ``TimeoutError`` if nothing came within ``timeout`` seconds.
        With ``pong`` an Engine.IO ping (``2``) is answered (``3``) and skipped.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            msg = await self.ws.receive(left)
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data: str | bytes = msg.data
                self.frames.append(data)
                if pong and data == "2":
                    await self.ws.send_str("3")
                    continue
                return data
            self._ended()
            return None

    async def expect(self, timeout: float = WAIT, *, pong: bool = False) -> str:  # noqa: ASYNC109
        """The next text frame; fails the test if the connection closed instead."""
        frame = await self.read(timeout, pong=pong)
        assert frame is not None, f"connection closed; frames so far {self.frames!r}"
        assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
        return frame

    async def closes_within(self, timeout: float, *, pong: bool = False) -> bool:  # noqa: ASYNC109
        """Read (and record) frames until the server closes; False if it had not by then."""
        deadline = time.monotonic() + timeout
        try:
            while await self.read(max(0.001, deadline - time.monotonic()), pong=pong) is not None:
                pass
        except TimeoutError:
            return False
        return True

    async def call(self, frame: str, ack_prefix: str, timeout: float = WAIT) -> str:  # noqa: ASYNC109
        """Send ``frame`` and return the first frame starting with ``ack_prefix``."""
        await self.send(frame)
        async with asyncio.timeout(timeout):
            while True:
                reply = await self.expect(timeout, pong=True)
                if reply.startswith(ack_prefix):
                    return reply

    def _ended(self) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.close_code = self.ws.close_code

    @property
    def lifetime(self) -> float | None:
        """Seconds from opening to the server's close, once it closed."""
        return None if self.closed_at is None else self.closed_at - self.opened_at

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
            await asyncio.wait_for(self.ws.close(), 2)
        await self.session.close()


class Polling:
    """One Engine.IO long-polling session, request by request."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, sid: str):
        self.session = session
        self.base_url = base_url
        self.sid = sid
        self.handshake: dict[str, Any] = {}
        self.opened_at = time.monotonic()

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base_url: str) -> Polling:
        """Handshake over polling; the session's ``open`` packet is in ``handshake``."""
        async with session.get(endpoint(base_url)) as resp:
            body = await resp.text()
        assert resp.status == 200, f"polling handshake answered {resp.status} {body!r}"
        handshake = open_payload(body)
        polling = cls(session, base_url, str(handshake["sid"]))
        polling.handshake = handshake
        return polling

    @classmethod
    async def joined(
        cls, session: aiohttp.ClientSession, base_url: str, username: str = "alice"
    ) -> Polling:
        """A polling session connected to the default namespace, ``welcome`` already read."""
        polling = await cls.open(session, base_url)
        status, _ = await polling.post("40" + json.dumps({"username": username}))
        assert status == 200
        seen: list[str] = []
        while not any(p.startswith('42["welcome"') for p in seen):
            status, body = await polling.get()
            assert status == 200, f"GET answered {status} {body!r} after {seen!r}"
            seen += packets(body)
        assert any(p.startswith("40{") for p in seen), f"CONNECT refused: {seen!r}"
        return polling

    @property
    def url(self) -> str:
        return endpoint(self.base_url, f"EIO=4&transport=polling&sid={self.sid}")

    async def get(self, timeout: float = WAIT) -> tuple[int, str]:  # noqa: ASYNC109
        """One long-poll GET: its status and body."""
        async with self.session.get(
            self.url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            return resp.status, await resp.text(errors="replace")

    async def post(self, body: str | bytes, timeout: float = WAIT) -> tuple[int, str]:  # noqa: ASYNC109
        """One POST of ``body`` as is: its status and body."""
        data = body.encode() if isinstance(body, str) else body
        async with self.session.post(
            self.url,
            data=data,
            headers={"Content-Type": "text/plain;charset=UTF-8"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            return resp.status, await resp.text(errors="replace")

    async def post_or_cut(self, body: str | bytes, timeout: float = WAIT) -> int | None:  # noqa: ASYNC109
        """POST ``body``; its status, or ``None`` if the server cut the request."""
        try:
            status, _ = await self.post(body, timeout)
        except (aiohttp.ClientError, OSError):
            return None
        return status
