"""The soak's own processes: one ``redis-server`` and chat servers, killable and restartable.

Every process is started in a session of its own (a Ctrl-C in the terminal
reaches only the soak, which then stops them itself) and registered, so
``stop_all`` (also run at exit) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

__all__ = ["ChatProcess", "RedisProcess", "free_port", "stop_all"]

REPO_DIR = Path(__file__).resolve().parent.parent
#: Variables of the server that the soak's own environment must not leak into it.
_SERVER_VARIABLES = ("PORT", "HOST", "REDIS_URL", "LOG_LEVEL", "LOG_FORMAT", "WEB_CONCURRENCY")

_started: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(
    argv: list[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv,
            cwd=REPO_DIR,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _started.append(popen)
    return popen


def _end(popen: subprocess.Popen[bytes], signum: int, timeout: float) -> None:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            popen.send_signal(signum)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    if popen in _started:
        _started.remove(popen)


def stop_all() -> None:
    """Stop every process the soak started and that is still running (SIGKILL after 5 s)."""
    for popen in list(_started):
        _end(popen, signal.SIGINT, 5.0)


atexit.register(stop_all)


class RedisProcess:
    """A ``redis-server`` on 127.0.0.1 that keeps nothing on disk; same port across restarts."""

    def __init__(self, logdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.dir = logdir
        self.log = logdir / "redis.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, within: float = 10.0) -> None:
        config = f'port {self.port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {self.dir}\n'
        popen = _spawn([self.binary, "-"], self.log)
        assert popen.stdin is not None
        popen.stdin.write(config.encode())
        popen.stdin.close()
        self.popen = popen
        deadline = time.monotonic() + within
        client = aioredis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            while True:
                if popen.poll() is not None:
                    raise RuntimeError(f"redis-server exited at start-up (see {self.log})")
                with contextlib.suppress(Exception):
                    if await client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer PING (see {self.log})")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def kill(self) -> None:
        """SIGKILL: with no persistence, everything it held is gone."""
        if self.popen is not None:
            _end(self.popen, signal.SIGKILL, 5.0)
            self.popen = None

    def freeze(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.popen is not None:
            _end(self.popen, signal.SIGTERM, 5.0)
            self.popen = None


class ChatProcess:
    """``python -m chat_server`` on 127.0.0.1, restartable on the same port."""

    def __init__(self, name: str, logdir: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.log = logdir / f"{name}.log"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in _SERVER_VARIABLES and not k.startswith("CHAT_")
        }
        self.env.update(env)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.popen: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    async def start(self, within: float = 20.0) -> None:
        argv = [sys.executable, "-m", "chat_server", "--port", str(self.port)]
        popen = _spawn([*argv, "--host", "127.0.0.1"], self.log, self.env)
        assert popen.stdin is not None
        popen.stdin.close()
        self.popen = popen
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while True:
                if popen.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start-up (see {self.log})")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    timeout_1s = aiohttp.ClientTimeout(total=1)
                    async with http.get(f"{self.url}/healthz", timeout=timeout_1s) as r:
                        if r.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not become healthy (see {self.log})")
                await asyncio.sleep(0.1)

    async def terminate(self) -> int:
        """SIGTERM and wait for the drain to end; returns the exit code (SIGKILL after 10 s)."""
        return await self._signal(signal.SIGTERM, 10.0)

    async def kill(self) -> int:
        return await self._signal(signal.SIGKILL, 5.0)

    async def _signal(self, signum: int, grace: float) -> int:
        popen = self.popen
        if popen is None:
            return 0
        popen.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(popen.wait, grace)
        _end(popen, signal.SIGKILL, 5.0)
        self.popen = None
        code = popen.returncode
        self.exit_codes.append(code)
        return code

    def stop(self) -> None:
        if self.popen is not None:
            _end(self.popen, signal.SIGINT, 5.0)
            self.popen = None
