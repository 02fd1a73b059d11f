"""Checks that a server is still well after a test has abused it."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import ChatClient

__all__ = ["assert_chat_works", "cpu_seconds", "metric", "rss_bytes", "wait_for"]

_rooms = itertools.count()


async def assert_chat_works(
    connect: Callable[..., Awaitable[ChatClient]],
    url: str,
    other_url: str | None = None,
) -> None:
    """Two fresh users (on ``url``, and ``other_url`` if given) can still talk.

    Each call uses a room of its own, so earlier calls leave nothing behind
    that could make this one pass.
    """
    room = f"health-{next(_rooms)}-{time.monotonic_ns()}"
    alice = await connect(url, "alice")
    bob = await connect(other_url or url, "bob")
    assert (await alice.call("join", {"room": room}))["ok"] is True
    assert (await bob.call("join", {"room": room}))["ok"] is True
    ack = await alice.call("message", {"room": room, "text": "still here?"})
    assert ack["ok"] is True, ack
    got = await bob.next("message")
    assert got["text"] == "still here?"
    assert got["room"] == room
    await alice.close()
    await bob.close()


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) process ``pid`` has used so far, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after it don't.
    fields = stat.rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


async def metric(
    session: aiohttp.ClientSession,
    url: str,
    name: str,
    labels: dict[str, str] | None = None,
    api_key: str = "test-key",
) -> float | None:
    """One sample from the server's ``/metrics``, or ``None`` when absent."""
    async with session.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {api_key}"}
    ) as resp:
        assert resp.status == 200, resp.status
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                return float(sample.value)
    return None


async def wait_for(
    check: Callable[[], Awaitable[Any]],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.1,
) -> float:
    """Poll ``check`` until it returns truthy; returns the seconds it took.

    Raises ``AssertionError`` (with the last exception, if any) after ``timeout``.
    """
    start = time.monotonic()
    last: BaseException | None = None
    while True:
        try:
            if await check():
                return time.monotonic() - start
            last = None
        except (AssertionError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            last = exc
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s (last error: {last!r})")
        await asyncio.sleep(interval)
