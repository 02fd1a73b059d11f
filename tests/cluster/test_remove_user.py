"""Removing a user reaches every process: connections close within 1 s, bans hold everywhere."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.chat import unique
from tests.support.clients import ConnectRefused
from tests.support.fixtures import Connect, StartProcesses

pytestmark = pytest.mark.redis


async def test_every_connection_on_every_process_closes_within_a_second(
    server_processes: StartProcesses,
    connect: Connect,
    http: aiohttp.ClientSession,
    api_headers: dict[str, str],
) -> None:
    first, second = await server_processes(2)
    alice = unique("alice")
    here, there = await connect(first.url, alice), await connect(second.url, alice)
    bob = await connect(second.url, unique("bob"))
    url = f"{first.url}/api/users/{alice}/disconnect"
    async with http.post(url, headers=api_headers) as response:
        assert (await response.json())["disconnected"] == 1
    await asyncio.gather(here.wait_disconnected(timeout=1), there.wait_disconnected(timeout=1))
    assert (await there.next("removed"))["reason"] == "removed"
    assert bob.sio.connected


async def test_a_ban_made_on_one_process_refuses_the_user_on_another(
    server_processes: StartProcesses,
    connect: Connect,
    http: aiohttp.ClientSession,
    api_headers: dict[str, str],
) -> None:
    first, second = await server_processes(2)
    alice = unique("alice")
    url = f"{first.url}/api/users/{alice}/disconnect"
    async with http.post(url, json={"ban_seconds": 60}, headers=api_headers) as response:
        assert response.status == 200
    with pytest.raises(ConnectRefused) as info:
        await connect(second.url, alice)
    assert info.value.code == "banned"
