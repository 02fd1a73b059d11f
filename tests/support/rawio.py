"""Raw Engine.IO / Socket.IO frames over aiohttp, for tests that misbehave on purpose.

``ChatClient`` speaks the protocol correctly; these helpers let a test send
anything at all (garbage, forged headers, binary frames) and watch what the
server does with the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from typing import Any

import aiohttp

__all__ = ["RawPolling", "RawSocket", "StalledSocket", "eio_path"]


def eio_path(base_url: str, transport: str = "websocket", **query: str) -> str:
    """The Socket.IO endpoint URL with Engine.IO v4 query parameters."""
    params = {"EIO": "4", "transport": transport, **query}
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{base_url}/socket.io/?{qs}"


class RawSocket:
    """One WebSocket to the Socket.IO endpoint, driven frame by frame.

    Use ``await RawSocket.open(url, username="mallory")`` for a connection
    that has passed the Engine.IO handshake and the Socket.IO namespace
    connect, or ``join=False`` to stop after the Engine.IO ``open`` packet.
    """

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.received: list[str | bytes] = []
        self.sid: str | None = None

    @classmethod
    async def open(
        cls,
        base_url: str,
        *,
        username: str | None = "mallory",
        auth: Any = None,
        join: bool = True,
        headers: dict[str, str] | None = None,
    ) -> RawSocket:
        session = aiohttp.ClientSession()
        try:
            # max_msg_size=0: the client must never be what limits a test.
            ws = await session.ws_connect(
                eio_path(base_url), headers=headers or {}, max_msg_size=0, autoping=True
            )
        except BaseException:
            await session.close()
            raise
        sock = cls(session, ws)
        opening = await sock.recv()
        if not isinstance(opening, str) or not opening.startswith("0"):
            await sock.close()
            raise AssertionError(f"expected an Engine.IO open packet, got {opening!r}")
        sock.sid = json.loads(opening[1:])["sid"]
        if join:
            payload = auth if auth is not None else {"username": username}
            await sock.send("40" + json.dumps(payload))
            answer = await sock.recv_matching(
                lambda f: isinstance(f, str) and f[:2] in ("40", "44")
            )
            if not isinstance(answer, str) or not answer.startswith("40"):
                await sock.close()
                raise AssertionError(f"namespace connect refused: {answer!r}")
        return sock

    async def send(self, frame: str | bytes) -> None:
        """Send one WebSocket frame (text for ``str``, binary for ``bytes``)."""
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def recv(self, timeout: float = 5) -> str | bytes | None:  # noqa: ASYNC109
        """The next frame, answering Engine.IO pings; ``None`` once the socket closed."""
        while True:
            msg = await self.ws.receive(timeout)
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.received.append(msg.data)
                if msg.data == "2":
                    await self.ws.send_str("3")
                    continue
                if msg.data == "1":
                    # Engine.IO CLOSE: the server is done with us.
                    await self.ws.close()
                    return None
                data: str | bytes = msg.data
                return data
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                return None

    async def recv_matching(self, want: Any, timeout: float = 5) -> str | bytes | None:  # noqa: ASYNC109
        """The first frame for which ``want(frame)`` is true; ``None`` if the socket closed."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame is None or want(frame):
                    return frame

    async def call(self, event: Any, *args: Any, ack_id: int = 7, timeout: float = 5) -> Any:  # noqa: ASYNC109
        """Send a Socket.IO EVENT with an ack id and return the ack's first argument."""
        await self.send(f"42{ack_id}" + json.dumps([event, *args]))
        prefix = f"43{ack_id}"
        frame = await self.recv_matching(
            lambda f: isinstance(f, str) and f.startswith(prefix), timeout
        )
        if frame is None:
            raise AssertionError("connection closed before the ack")
        assert isinstance(frame, str)
        values = json.loads(frame[len(prefix) :])
        return values[0] if values else None

    async def wait_closed(self, timeout: float = 5) -> bool:  # noqa: ASYNC109
        """True once the server has closed this connection within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while await self.recv(timeout) is not None:
                    pass
        except TimeoutError:
            return False
        return True

    async def drain(self, within: float = 0.3) -> bool:
        """Read whatever arrives for ``within`` seconds; True if the socket closed meanwhile."""
        try:
            async with asyncio.timeout(within):
                while await self.recv(within) is not None:
                    pass
                return True
        except TimeoutError:
            return False

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.session.close()


class RawPolling:
    """An Engine.IO long-polling session, for POSTing arbitrary bodies."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, sid: str):
        self.session = session
        self.base_url = base_url
        self.sid = sid

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base_url: str) -> RawPolling:
        async with session.get(eio_path(base_url, "polling")) as resp:
            body = await resp.text()
        if resp.status != 200 or not body.startswith("0"):
            raise AssertionError(f"polling handshake failed: {resp.status} {body!r}")
        return cls(session, base_url, json.loads(body[1:])["sid"])

    @property
    def url(self) -> str:
        return eio_path(self.base_url, "polling", sid=self.sid)

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        """POST ``body`` as is; returns the HTTP status."""
        async with self.session.post(self.url, data=body, headers=headers or {}) as resp:
            await resp.read()
            return resp.status

    async def get(self, timeout: float = 5) -> tuple[int, str]:  # noqa: ASYNC109
        """One long-poll GET; returns status and body."""
        async with self.session.get(
            self.url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            return resp.status, await resp.text(errors="replace")


class StalledSocket:
    """A WebSocket client that joins a room, then never reads again.

    It speaks just enough of the WebSocket protocol over a plain TCP socket
    with a tiny receive buffer, so that the kernel stops taking the server's
    bytes almost at once: the server's own queue is what has to hold them.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, username: str, room: str) -> StalledSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise AssertionError(f"websocket upgrade refused: {head!r}")
        stalled = cls(reader, writer)
        await stalled.read_until(lambda t: t.startswith("0"))
        stalled.send("40" + json.dumps({"username": username}))
        await stalled.read_until(lambda t: t.startswith("40"))
        stalled.send("421" + json.dumps(["join", {"room": room}]))
        await stalled.read_until(lambda t: t.startswith("431"))
        return stalled

    def send(self, text: str) -> None:
        """Write one masked text frame (clients must mask)."""
        payload = text.encode()
        mask = os.urandom(4)
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def read_frame(self) -> str:
        first, second = await self.reader.readexactly(2)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        data = await self.reader.readexactly(n)
        if first & 0x0F == 0x8:
            raise ConnectionResetError("websocket closed by the server")
        return data.decode(errors="replace")

    async def read_until(self, want: Any, timeout: float = 5) -> str:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while True:
                text = await self.read_frame()
                if text == "2":
                    self.send("3")
                elif want(text):
                    return text

    async def closed_by_server(self, timeout: float = 5) -> bool:  # noqa: ASYNC109
        """Read (and discard) everything; True if the server ended the connection."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except OSError:
            pass
        return True

    def close(self) -> None:
        self.writer.transport.abort()
