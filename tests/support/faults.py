"""Helpers of the fault tests: health polls, recovery timers, live probes across processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.support.chat import join
from tests.support.clients import ChatClient
from tests.support.health import wait_for

__all__ = ["assert_recovered", "health", "live_flow", "report", "until"]


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print one ``[fault]`` line past pytest's capture (the figures docs/operations.md cites)."""
    with capsys.disabled():
        print(f"\n[fault] {line}")


async def health(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    """``GET /healthz``: its status and body."""
    async with http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
        return resp.status, await resp.json()


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> float:  # noqa: ASYNC109
    """Seconds until ``check()`` holds; fails after ``timeout``."""
    return await wait_for(check, timeout, interval=0.05)


async def live_flow(sender: ChatClient, receiver: ChatClient, room: str) -> tuple[float, set[str]]:
    """Send every 100 ms until ``receiver`` gets one live; returns (seconds, acked ids).

    Failed sends (Redis still away) are fine; ``acked`` holds the ids of those
    the server accepted, so the caller can check none of them is lost.
    """
    start = time.monotonic()
    acked: set[str] = set()
    receiver.pending("message")
    while True:
        ack = await sender.call("message", {"room": room, "text": f"probe {len(acked)}"})
        if ack.get("ok"):
            acked.add(ack["id"])
        if any(m["id"] in acked for m in receiver.pending("message")):
            return time.monotonic() - start, acked
        assert time.monotonic() - start < 15, "no live delivery across processes"
        await asyncio.sleep(0.1)


async def assert_recovered(client: ChatClient, room: str, since: str, acked: set[str]) -> None:
    """Every acked id is in the room's history after ``since`` (the gap is fillable)."""
    ack = await join(client, room, since=since)
    ids = {m["id"] for m in ack["history"]}
    assert acked <= ids, f"acked but not in history: {sorted(acked - ids)}"
