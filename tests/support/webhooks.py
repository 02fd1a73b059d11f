"""A real webhook receiver on a free port: records every POST, answers as the test says."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.ports import free_port

__all__ = ["HOOK_SECRET", "Delivery", "Receiver", "receiver", "signature_ok"]

HOOK_SECRET = "hook-test-secret"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST the receiver got: its headers, its raw body, when it arrived."""

    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


def signature_ok(delivery: Delivery, secret: str = HOOK_SECRET) -> bool:
    """Whether ``delivery`` carries the contract's v1 signature of its body."""
    stamp = delivery.headers.get("Chat-Webhook-Timestamp", "")
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + delivery.body, hashlib.sha256)
    return hmac.compare_digest(
        delivery.headers.get("Chat-Webhook-Signature", ""), "v1=" + mac.hexdigest()
    )


class Receiver:
    """Records POSTs to ``url``; answers ``status`` after ``delay`` seconds.

    Change ``status`` and ``delay`` at any time; a delivery answered with
    anything but 2xx is still recorded in ``attempts``, while ``deliveries``
    holds only those answered 2xx.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.status = 200
        self.delay = 0.0
        self.attempts: list[Delivery] = []
        self.deliveries: list[Delivery] = []
        #: Requests being answered now, and the most there ever were at once.
        self.in_flight = 0
        self.most_in_flight = 0
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        delivery = Delivery(dict(request.headers), body, time.monotonic())
        self.attempts.append(delivery)
        status = self.status
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if 200 <= status < 300:
            self.deliveries.append(delivery)
        self._changed.set()
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """The events delivered (answered 2xx), of ``type`` if given, in arrival order."""
        return [d.event for d in self.deliveries if type is None or d.event["type"] == type]

    async def until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until ``check()`` holds after some delivery; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not check():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"receiver: not reached within {timeout} s")
            self._changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))

    async def next_event(self, type: str, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The first delivered event of ``type``, waiting for it."""
        await self.until(lambda: bool(self.events(type)), timeout)
        return self.events(type)[0]


@asynccontextmanager
async def receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    """A ``Receiver`` served on 127.0.0.1 (a free port unless given) for the block."""
    hooks = Receiver(port if port is not None else free_port())
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", hooks.port)
    await site.start()
    try:
        yield hooks
    finally:
        await runner.cleanup()
