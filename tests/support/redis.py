"""A throwaway ``redis-server`` on a free port, owned by the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from chat_server.core.settings import RedisTarget
from tests.support.health import wait_for
from tests.support.ports import free_port

__all__ = [
    "RedisServer",
    "redis_binary",
    "require_redis_binary",
    "subscribers",
    "wait_unsubscribed",
]


def redis_binary() -> str | None:
    """Path of ``redis-server`` on PATH, or ``None`` when it is not installed."""
    return shutil.which("redis-server")


def require_redis_binary() -> None:
    """Skip the test without ``redis-server`` on PATH; under CI=true, fail it instead."""
    if redis_binary() is not None:
        return
    reason = "redis-server is not on PATH; install it (apt-get install redis-server)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: required under CI=true", pytrace=False)
    pytest.skip(reason)


def _command(port: int, command: bytes, timeout: float = 1.0) -> bytes:
    """Send one inline Redis command and return the first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command + b"\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(1024)
            if not chunk:
                break
            reply += chunk
        return reply.strip()


class RedisServer:
    """A ``redis-server`` child process that keeps nothing on disk unless ``persistent``.

    :param port: TCP port on 127.0.0.1; a free one by default. It stays the
                 same across ``stop()``/``start()``, so servers pointed at
                 ``url`` can reconnect to a restarted Redis.
    :param persistent: keep an append-only file synced on every write, so
                 that what Redis acknowledged survives ``kill()`` and ``start()``.
    :param config: more configuration lines (``tests/support/cluster.py``
                 makes cluster nodes with it).
    """

    def __init__(
        self, port: int | None = None, *, persistent: bool = False, config: str = ""
    ) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        self.binary = binary
        self.port = port if port is not None else free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="chat-test-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.persistent = persistent
        self.config = config

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def directory(self) -> Path:
        """The server's working directory (its files, and its log)."""
        return self._dir

    @property
    def log_path(self) -> Path:
        return self._dir / "redis.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        if self._proc is not None and self._proc.poll() is None:
            return
        # a config file on stdin keeps the empty `save ""` argument unambiguous
        config = (
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            'save ""\n'
            + ("appendonly yes\nappendfsync always\n" if self.persistent else "appendonly no\n")
            + f"dir {self._dir}\n"
            f"logfile {self.log_path}\n" + self.config
        )
        self._proc = subprocess.Popen(
            [self.binary, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(config.encode())
        self._proc.stdin.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start-up:\n{self._log_tail()}")
            with contextlib.suppress(OSError):
                if _command(self.port, b"PING") == b"+PONG":
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer PING:\n{self._log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop it politely (SIGTERM), SIGKILL after 5 s."""
        if self._proc is None:
            return
        self.resume()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Stop it at once (SIGKILL), as a crash would."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open but nothing answers."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def flushall(self) -> None:
        """Forget every key, so each test starts from an empty Redis."""
        reply = _command(self.port, b"FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def kill_subscriptions(url: str) -> int:
    """Have the Redis at ``url`` drop every pub/sub client; how many it dropped.

    On a cluster (``redis+cluster://``) every node drops its own, sharded
    subscribers included.
    """
    target = RedisTarget.parse(url)
    if not target.cluster:
        return await _kill_subscriptions(target.url)
    cluster = RedisCluster.from_url(target.url)
    try:
        await cluster.initialize()
        nodes = [f"redis://{node.host}:{node.port}" for node in cluster.get_nodes()]
    finally:
        await cluster.aclose()
    return sum([await _kill_subscriptions(node) for node in nodes])


async def _kill_subscriptions(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        killed: int = await client.client_kill_filter(_type="pubsub")
    finally:
        await client.aclose()
    return killed


async def subscribers(client: aioredis.Redis | RedisCluster, channel: str) -> int:
    """How many connections are subscribed to ``channel``.

    ``PUBSUB NUMSUB`` on one Redis; on a cluster ``PUBSUB SHARDNUMSUB`` on the
    master of the channel's slot, where its sharded subscribers are.
    """
    if isinstance(client, RedisCluster):
        await client.initialize()
        node = client.get_node_from_key(channel)
        reply = await client.execute_command("PUBSUB SHARDNUMSUB", channel, target_nodes=node)
        return int(dict(_pairs(reply)).get(channel.encode(), 0))
    ((_, count),) = await client.pubsub_numsub(channel)
    return int(count)


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    if isinstance(reply, dict):
        return list(reply.items())
    if reply and isinstance(reply[0], (list, tuple)):
        return [tuple(pair) for pair in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))


async def wait_unsubscribed(
    client: aioredis.Redis | RedisCluster,
    channel: str,
    timeout: float = 5,  # noqa: ASYNC109
) -> None:
    """Wait until nobody is subscribed to ``channel``; AssertionError after ``timeout``."""

    async def gone() -> bool:
        return await subscribers(client, channel) == 0

    await wait_for(gone, timeout)
