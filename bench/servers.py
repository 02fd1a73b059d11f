"""Start, watch and stop the servers under test: Node, plain python-socketio, ours, Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "REPO_DIR",
    "Proc",
    "ServerSet",
    "WebhookSink",
    "cpu_seconds",
    "free_port",
    "node_available",
    "process_tree",
    "rss_bytes",
    "start_redis",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
NODE_DIR = BENCH_DIR / "node"
API_KEY = "bench-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
#: Limits high enough that the contract's rate limiting never shapes the load.
OUR_LIMITS = (
    "--rate-burst",
    "100000000",
    "--rate-per-second",
    "100000000",
    "--api-rate-per-second",
    "100000000",
    # idle-rooms --idle-20k holds 20,000 connections in one process (10,000 by default).
    "--max-connections",
    "100000",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all of its live descendants (``--workers`` forks children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces; fields count from the last ")".
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/statm") as f:
            total += int(f.read().split()[1]) * PAGE
    return total


@dataclass
class Proc:
    """One child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _spawn(
    name: str, argv: Sequence[str], env: dict[str, str], logdir: Path, cwd: Path = REPO_DIR
) -> Proc:
    log = logdir / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Proc(name, popen, log)


def start_redis(logdir: Path) -> tuple[Proc, str]:
    """A private redis-server on a free port, no persistence; returns it and its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found on PATH")
    port = free_port()
    proc = _spawn(
        "redis",
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(logdir),
        ],
        dict(os.environ),
        logdir,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"redis-server did not start:\n{proc.tail()}")


@dataclass
class RedisCluster:
    """A private Redis Cluster of ``len(nodes)`` masters, no replicas."""

    nodes: list[Proc]
    ports: list[int]

    @property
    def url(self) -> str:
        """The chat's ``REDIS_URL`` for it."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    @property
    def pids(self) -> list[int]:
        """Every node's pid (their CPU is the cluster's)."""
        return [node.popen.pid for node in self.nodes]

    def flush(self) -> None:
        """FLUSHALL on every master."""
        for port in self.ports:
            redis_flush(f"redis://127.0.0.1:{port}/0")

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def start_redis_cluster(logdir: Path, masters: int = 3) -> RedisCluster:
    """A private Redis Cluster on free ports (each at most 55535: the cluster bus is +10000)."""
    exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if exe is None or cli is None:
        raise RuntimeError("redis-server and redis-cli are needed for a cluster")
    ports, nodes = [], []
    for _ in range(masters):
        port = _cluster_port()
        node_dir = logdir / f"cluster-{port}"
        node_dir.mkdir()
        argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        argv += ["no", "--dir", str(node_dir), "--cluster-enabled", "yes"]
        nodes.append(_spawn(f"redis-cluster-{port}", argv, dict(os.environ), logdir))
        ports.append(port)
    cluster = RedisCluster(nodes, ports)
    try:
        for port in ports:
            _wait_pong(port)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_cluster_ok(ports)
    except Exception:
        cluster.stop()
        raise
    return cluster


def _cluster_port() -> int:
    while True:
        port = random.randrange(20000, 55536)
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port


def _ask(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 0.5) as s:
        s.sendall(command + b"\r\n")
        return s.recv(4096)


def _wait_pong(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _ask(port, b"PING").startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on {port} did not start")


def _wait_cluster_ok(ports: Sequence[int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(b"cluster_state:ok" in _ask(p, b"CLUSTER INFO") for p in ports):
            return
        time.sleep(0.05)
    raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")


def redis_flush(url: str) -> None:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), 2) as s:
        s.sendall(b"FLUSHALL\r\n")
        s.recv(64)


def node_available() -> str | None:
    """None when the Node baseline can run, else the reason it cannot."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "socket.io").is_dir():
        if shutil.which("npm") is None:
            return "npm is not installed"
        print("  (installing the Node baseline: npm ci in bench/node)", flush=True)
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            return "npm ci failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return None


def _http_get_status(port: int, path: str) -> int | None:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            s.settimeout(2)
            head = s.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class WebhookSink:
    """``bench/webhook_sink.py`` on a free port: a receiver answering 200 at once.

    ``env`` points our server at it; ``stats()`` reads (and resets) the delay
    of each ``message`` event it received.
    """

    SECRET = "bench-webhook-secret"

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        argv = [sys.executable, str(BENCH_DIR / "webhook_sink.py"), "--port", str(self.port)]
        self.proc = _spawn("webhook-sink", argv, dict(os.environ), logdir)
        deadline = time.monotonic() + 15
        while _http_get_status(self.port, "/stats") != 200:
            if self.proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"webhook sink did not start:\n{self.proc.tail()}")
            time.sleep(0.05)

    @property
    def env(self) -> dict[str, str]:
        return {
            "CHAT_WEBHOOK_URL": f"http://127.0.0.1:{self.port}/hook",
            "CHAT_WEBHOOK_SECRET": self.SECRET,
        }

    async def stats(self, settle: bool = False) -> dict[str, Any]:
        """The delays since the last call; ``settle`` first waits 1 s for stragglers."""
        if settle:
            await asyncio.sleep(1.0)

        def get() -> dict[str, Any]:
            url = f"http://127.0.0.1:{self.port}/stats"
            with urllib.request.urlopen(url, timeout=5) as response:
                value: dict[str, Any] = json.loads(response.read())
                return value

        return await asyncio.to_thread(get)

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class ServerSet:
    """The processes of one server configuration, and the ports clients use."""

    kind: str  # "node", "plain", "plain-fast", "ours"
    processes: int
    redis_url: str | None
    logdir: Path
    workers: int = 1  # ours only: N processes behind one port (--workers)
    extra_env: dict[str, str] = field(default_factory=dict)
    #: ours only: the checkout whose ``chat_server`` runs (an earlier commit's
    #: worktree, for a before/after comparison in one run); this one by default.
    source: Path = REPO_DIR
    procs: list[Proc] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    envs: list[dict[str, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.workers > 1:
            return f"{self.kind} --workers {self.workers}"
        return self.kind

    def _argv(self, port: int) -> list[str]:
        if self.kind == "node":
            return ["node", str(NODE_DIR / "server.js")]
        if self.kind in ("plain", "plain-fast"):
            argv = [
                sys.executable,
                str(BENCH_DIR / "baseline_plain.py"),
                "--port",
                str(port),
                "--api-key",
                API_KEY,
            ]
            if self.redis_url:
                argv += ["--redis-url", self.redis_url]
            if self.kind == "plain-fast":
                argv.append("--fast")
            return argv
        if self.kind == "ours":
            argv = [
                sys.executable,
                "-m",
                "chat_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--api-key",
                API_KEY,
                "--log-level",
                "WARNING",
                *OUR_LIMITS,
            ]
            if self.redis_url:
                argv += ["--redis-url", self.redis_url]
            if self.workers > 1:
                argv += ["--workers", str(self.workers)]
            return argv
        raise ValueError(self.kind)

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("WEB_CONCURRENCY", None)
        env.update(self.extra_env)
        env.update(HOST="127.0.0.1", CHAT_API_KEY=API_KEY, PYTHONUNBUFFERED="1")
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        else:
            env.pop("REDIS_URL", None)
        for i in range(self.processes):
            port = free_port()
            env["PORT"] = str(port)
            name = f"{self.kind}-{i}"
            self.procs.append(_spawn(name, self._argv(port), env, self.logdir, self.source))
            self.ports.append(port)
            self.envs.append(dict(env))
        deadline = time.monotonic() + 30
        self._wait_healthy(deadline)
        if self.workers > 1:
            # Every worker must be serving before load starts, or the first ones
            # take all the connections.
            while len(self.pids()) < self.workers + 1:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            time.sleep(1.0)

    def _wait_healthy(self, deadline: float, interval: float = 0.1) -> None:
        for proc, port in zip(self.procs, self.ports, strict=True):
            while _http_get_status(port, "/healthz") != 200:
                if proc.popen.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{proc.name} did not start:\n{proc.tail()}")
                time.sleep(interval)

    def restart(self) -> float:
        """SIGTERM every process (ours drains), start each anew on its port once it
        has exited, wait until all answer ``/healthz``; returns that moment
        (``time.monotonic()``). ``procs`` is updated in place."""
        for proc in self.procs:
            proc.popen.send_signal(signal.SIGTERM)
        for i, proc in enumerate(self.procs):
            proc.stop(timeout=30)  # already signalled: waits, kills past the limit
            name = f"{proc.name.split('~')[0]}~{time.monotonic_ns()}"
            argv = self._argv(self.ports[i])
            self.procs[i] = _spawn(name, argv, self.envs[i], self.logdir, self.source)
        self._wait_healthy(time.monotonic() + 30, interval=0.02)
        return time.monotonic()

    def pids(self) -> list[int]:
        out: list[int] = []
        for proc in self.procs:
            if proc.popen.poll() is None:
                out.extend(process_tree(proc.popen.pid))
        return out

    def alive(self) -> bool:
        return all(p.popen.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


async def settle(pids: Sequence[int], quiet: float = 0.05, limit: float = 30.0) -> float:
    """Wait until ``pids`` use less than ``quiet`` of a core over 0.5 s; returns the wait."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = cpu_seconds(pids)
        await asyncio.sleep(0.5)
        if cpu_seconds(pids) - before < quiet * 0.5:
            break
    return time.monotonic() - start


def new_logdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="chat-bench-"))
