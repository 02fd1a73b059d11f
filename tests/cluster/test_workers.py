"""``--workers N``: N processes on one port linked by Redis, WebSocket only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from chat_server.config import ConfigError, parse_command_line
from chat_server.workers import STOP_TIMEOUT
from tests.support.fixtures import Connect, StartProcesses
from tests.support.ports import free_port
from tests.support.process import REPO_ROOT, ServerProcess, clean_environ


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return out


def socket_count(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):  # closed while we looked
            count += os.readlink(fd).startswith("socket:")
    return count


async def wait_for_children(pid: int, n: int) -> list[int]:
    deadline = time.monotonic() + 15
    while len(found := children(pid)) != n:
        assert time.monotonic() < deadline, f"{len(found)} workers, expected {n}"
        await asyncio.sleep(0.1)
    return found


def test_workers_default_to_web_concurrency_when_redis_links_them() -> None:
    command = parse_command_line(
        ["--redis-url", "redis://127.0.0.1:6390/0"], {"WEB_CONCURRENCY": "3"}
    )
    assert command.settings.workers == 3


def test_the_workers_flag_wins_over_web_concurrency() -> None:
    command = parse_command_line(
        ["--workers", "2"], {"WEB_CONCURRENCY": "4", "REDIS_URL": "redis://127.0.0.1:6390/0"}
    )
    assert command.settings.workers == 2


def test_web_concurrency_without_redis_means_one_process() -> None:
    assert parse_command_line([], {"WEB_CONCURRENCY": "4"}).settings.workers == 1


def test_the_workers_flag_without_redis_is_a_config_error_naming_redis_url() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        parse_command_line(["--workers", "2"], {})


def test_workers_without_redis_stop_start_up_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chat_server", "--workers", "2", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "REDIS_URL" in result.stderr and "Traceback" not in result.stderr


async def test_web_concurrency_without_redis_serves_from_one_process() -> None:
    server = ServerProcess(env={"WEB_CONCURRENCY": "2"})
    await asyncio.to_thread(server.start)
    try:
        assert server.pid is not None
        assert children(server.pid) == []
        assert "WEB_CONCURRENCY=2 ignored" in server.log_text()
    finally:
        await asyncio.to_thread(server.stop, 10.0, signal.SIGINT)


@pytest.mark.redis
async def test_two_workers_share_one_port_and_one_room(
    server_processes: StartProcesses, connect: Connect
) -> None:
    (master,) = await server_processes(1, args=["--workers", "2"])
    assert master.pid is not None
    workers = await wait_for_children(master.pid, 2)
    await asyncio.sleep(0.5)  # both listening before clients arrive
    before = {pid: socket_count(pid) for pid in workers}
    clients = [await connect(master.url, f"user{i}", transports=["websocket"]) for i in range(16)]
    for client in clients:
        assert (await client.call("join", {"room": "lobby"}))["ok"]
    after = {pid: socket_count(pid) for pid in workers}
    # The kernel spread the connections: both processes hold some.
    assert all(after[pid] > before[pid] for pid in workers), (before, after)
    ack = await clients[0].call("message", {"room": "lobby", "text": "to everyone"})
    assert ack["ok"]
    for client in clients:
        message = await client.next_where("message", lambda m: m["id"] == ack["id"])
        assert message["text"] == "to everyone"


@pytest.mark.redis
async def test_long_polling_is_refused_with_the_reason(
    server_processes: StartProcesses, http: aiohttp.ClientSession
) -> None:
    (master,) = await server_processes(1, args=["--workers", "2"])
    async with http.get(f"{master.url}/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 400
        body = await response.json()
    assert "WebSocket only" in body["message"] and "sticky sessions" in body["message"]


@pytest.mark.redis
async def test_sigterm_stops_every_worker_with_status_0(server_processes: StartProcesses) -> None:
    (master,) = await server_processes(1, args=["--workers", "2"])
    assert master.pid is not None
    workers = await wait_for_children(master.pid, 2)
    master.send_signal(signal.SIGTERM)
    # Past STOP_TIMEOUT the supervisor kills the workers and exits 1, so a
    # hung worker still fails this; a slow machine merely takes longer.
    code = await asyncio.to_thread(master.wait, STOP_TIMEOUT + 5)
    assert code == 0, master.log_tail()
    assert all(_state(pid) in ("gone", "Z") for pid in workers)


@pytest.mark.redis
async def test_a_worker_that_dies_is_replaced(
    server_processes: StartProcesses, connect: Connect
) -> None:
    (master,) = await server_processes(1, args=["--workers", "2"])
    assert master.pid is not None
    first, second = await wait_for_children(master.pid, 2)
    await asyncio.sleep(5.5)  # past the start-up window in which a death stops everything
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while first in (now := children(master.pid)) or len(now) != 2:
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.1)
    assert second in now
    client = await connect(master.url, "after", transports=["websocket"])
    assert (await client.call("join", {"room": "lobby"}))["ok"]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
