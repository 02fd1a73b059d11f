"""A python-socketio client that records what the server sends, for assertions."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import socketio

__all__ = ["NO_PAYLOAD", "ChatClient", "ConnectRefused", "close_bounded"]

#: Pass as ``payload`` to send an event with no argument at all.
NO_PAYLOAD: Any = object()


class ConnectRefused(socketio.exceptions.ConnectionError):  # type: ignore[misc]  # untyped base (python-socketio)
    """The server refused the connection with a ``connect_error``.

    ``message`` and ``data`` are the server's; ``code`` is ``data["code"]``
    when present.
    """

    def __init__(self, message: Any, data: Any) -> None:
        super().__init__(f"connection refused: {message!r} {data!r}")
        self.message = message
        self.data = data

    @property
    def code(self) -> Any:
        return self.data.get("code") if isinstance(self.data, dict) else None


class ChatClient:
    """Thin wrapper around ``socketio.AsyncClient``.

    Every event the server emits lands in a queue of its own, so a test can
    ``await client.next("message")`` or assert ``no_event``; ``log`` keeps all
    of them in arrival order as ``(event, payload)``.
    """

    def __init__(self, **client_kwargs: Any) -> None:
        client_kwargs.setdefault("reconnection", False)
        client_kwargs.setdefault("handle_sigint", False)
        self.sio = socketio.AsyncClient(**client_kwargs)
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.log: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self.disconnect_reason: Any = None
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.sio.on("*", self._on_any)
        self.sio.on("connect", self._on_connect)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        auth: Any = None,
        transports: list[str] | None = None,
        headers: dict[str, str] | None = None,
        wait_timeout: float = 5,
        **client_kwargs: Any,
    ) -> ChatClient:
        """Connect and return the client; raise ``ConnectRefused`` on ``connect_error``."""
        client = cls(**client_kwargs)
        await client.open(
            url, auth=auth, transports=transports, headers=headers, wait_timeout=wait_timeout
        )
        return client

    async def open(
        self,
        url: str,
        *,
        auth: Any = None,
        transports: list[str] | None = None,
        headers: dict[str, str] | None = None,
        wait_timeout: float = 5,
    ) -> None:
        try:
            await self.sio.connect(
                url,
                auth=auth,
                headers=headers or {},
                transports=transports or ["websocket"],
                wait_timeout=wait_timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            if self.connect_error is not None:
                err = self.connect_error
                if isinstance(err, dict):
                    raise ConnectRefused(err.get("message"), err.get("data")) from exc
                raise ConnectRefused(err, None) from exc
            raise

    @property
    def sid(self) -> str | None:
        sid: str | None = self.sio.get_sid()
        return sid

    # ASYNC109: a per-call timeout keyword reads better in tests than wrapping
    # every await in asyncio.timeout(), and mirrors sio.call(timeout=...).
    async def call(
        self,
        event: str,
        payload: Any = NO_PAYLOAD,
        timeout: float = 5,  # noqa: ASYNC109
    ) -> Any:
        """Emit ``event`` with an ack callback and return what the server acked."""
        data = () if payload is NO_PAYLOAD else (payload,)
        return await self.sio.call(event, data, timeout=timeout)

    async def emit(self, event: str, payload: Any = NO_PAYLOAD) -> None:
        """Emit ``event`` without asking for an ack."""
        data = () if payload is NO_PAYLOAD else (payload,)
        await self.sio.emit(event, data)

    async def next(self, event: str, timeout: float = 5) -> Any:  # noqa: ASYNC109
        """The next payload of ``event`` (already received or still to come)."""
        try:
            return await asyncio.wait_for(self._queues[event].get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {event!r} event within {timeout} s") from None

    async def no_event(self, event: str, within: float = 0.5) -> None:
        """Assert that no ``event`` is pending or arrives within ``within`` seconds."""
        try:
            payload = await asyncio.wait_for(self._queues[event].get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {event!r} event: {payload!r}")

    async def next_where(
        self,
        event: str,
        predicate: Callable[[Any], bool],
        timeout: float = 5,  # noqa: ASYNC109
    ) -> Any:
        """The next payload of ``event`` that satisfies ``predicate``; others are dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching {event!r} event within {timeout} s")
            try:
                payload = await asyncio.wait_for(self._queues[event].get(), remaining)
            except TimeoutError:
                raise AssertionError(f"no matching {event!r} event within {timeout} s") from None
            if predicate(payload):
                return payload

    async def no_event_where(
        self, event: str, predicate: Callable[[Any], bool], within: float = 0.5
    ) -> None:
        """Assert no payload of ``event`` satisfying ``predicate`` is pending or arrives."""
        try:
            payload = await self.next_where(event, predicate, within)
        except AssertionError:
            return
        raise AssertionError(f"unexpected {event!r} event: {payload!r}")

    def pending(self, event: str) -> list[Any]:
        """Take every payload of ``event`` received so far and not yet consumed."""
        queue = self._queues[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def wait_disconnected(self, timeout: float = 5) -> Any:  # noqa: ASYNC109
        """Wait until the connection ends; returns python-socketio's reason."""
        try:
            await asyncio.wait_for(self.disconnected.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"still connected after {timeout} s") from None
        return self.disconnect_reason

    async def close(self) -> None:
        """Disconnect (if still connected) and stop any reconnection attempts."""
        eio = self.sio.eio
        if eio.state == "connected" and eio.current_transport == "polling":
            # engineio's client would wait for the pending long-poll to come back
            # (up to a ping interval, 25 s), so tell the server and move on.
            await eio.disconnect(abort=True)
        await self.sio.shutdown()
        if self.sio.eio.state == "connected":
            await self.sio.eio.disconnect()

    async def _on_any(self, event: str, *args: Any) -> None:
        payload = args[0] if len(args) == 1 else (args if args else None)
        self.log.append((event, payload))
        await self._queues[event].put(payload)

    def _on_connect(self) -> None:
        self.disconnected.clear()
        self.connected.set()

    def _on_connect_error(self, data: Any = None) -> None:
        self.connect_error = data

    def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnect_reason = reason
        self.connected.clear()
        self.disconnected.set()


async def close_bounded(client: ChatClient, timeout: float = 10) -> None:  # noqa: ASYNC109
    """Close ``client``; a close that hangs (engineio waiting on a dead peer) is aborted."""
    try:
        await asyncio.wait_for(client.close(), timeout)
    except TimeoutError:
        await client.sio.eio.disconnect(abort=True)
