"""What a refused handshake costs the server, next to an accepted one.

Starts ``python -m chat_server`` twice on loopback: once with no handshake
limit, where each client opens a WebSocket, completes the Socket.IO CONNECT
as a guest and closes; once with ``CHAT_CONNECT_RATE_PER_IP`` so low that
every handshake after the first is answered 429 before the upgrade. Prints
the server's CPU time per handshake (from /proc, user + system) and the
client's wall time per handshake, one at a time, for each.

    python -m bench.handshake_cost [--count 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    full_env = {**os.environ, "LOG_LEVEL": "WARNING", **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chat_server", "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


async def _accepted(http: aiohttp.ClientSession, url: str, n: int) -> None:
    async with http.ws_connect(url + WEBSOCKET) as ws:
        await ws.receive()  # Engine.IO OPEN
        await ws.send_str(f'40{{"username":"u{n}"}}')
        await ws.receive()  # Socket.IO CONNECT reply


async def _refused(http: aiohttp.ClientSession, url: str, n: int) -> None:
    try:
        async with http.ws_connect(url + WEBSOCKET):
            pass
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 429, exc.status


async def _measure(env: dict[str, str], count: int, refused: bool) -> tuple[float, float]:
    proc, url = _start(env)
    try:
        async with aiohttp.ClientSession() as http:
            if refused:
                await _accepted(http, url, -1)  # spends the one token of the bucket
            step = _refused if refused else _accepted
            for n in range(50):  # warm up
                await step(http, url, n)
            cpu, wall = _cpu_seconds(proc.pid), time.perf_counter()
            for n in range(count):
                await step(http, url, n)
            wall = time.perf_counter() - wall
            await asyncio.sleep(0.5)  # let closes finish on the server
            cpu = _cpu_seconds(proc.pid) - cpu
    finally:
        proc.terminate()
        proc.wait(10)
    return cpu / count, wall / count


async def main(count: int) -> None:
    """Measure and print both figures."""
    accepted = await _measure({}, count, refused=False)
    refused = await _measure({"CHAT_CONNECT_RATE_PER_IP": "0.001"}, count, refused=True)
    print(f"{'handshake':<10} {'server CPU':>12} {'client wall':>12}")
    for name, (cpu, wall) in (("accepted", accepted), ("refused", refused)):
        print(f"{name:<10} {cpu * 1e6:>9.0f} µs {wall * 1e6:>9.0f} µs")
    print(f"a refused handshake costs the server {accepted[0] / refused[0]:.1f}x less CPU")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    asyncio.run(main(parser.parse_args().count))
