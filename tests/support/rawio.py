"""Raw Engine.IO / Socket.IO frames over aiohttp, for tests that misbehave on purpose.

``ChatClient`` speaks the protocol correctly; these helpers let a test send
anything at all (garbage, forged headers, binary frames) and watch what the
server does with the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp

__all__ = ["RawPolling", "RawSocket", "eio_path"]


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
