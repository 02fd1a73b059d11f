"""``python -m chat_server`` as a real child process, for multi-process and CLI tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.ports import free_port

__all__ = ["REPO_ROOT", "ServerProcess", "clean_environ"]

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables the server reads; the tests' own environment must not leak into a
# server a test starts, so these are removed unless the test sets them.
_SERVER_VARIABLES = (
    "PORT",
    "HOST",
    "REDIS_URL",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WEB_CONCURRENCY",
)


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without the server's variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _SERVER_VARIABLES and not k.startswith("CHAT_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    """One chat server process on 127.0.0.1.

    :param port: TCP port; a free one when ``None``.
    :param env: variables added to a clean environment (see ``clean_environ``).
    :param args: extra command-line arguments after ``--port P``.
    :param pass_port: pass ``--port P`` (and ``--host 127.0.0.1`` unless the
                      test sets ``HOST`` or ``--host``); ``False`` lets a test
                      check ``PORT``/``HOST`` from the environment.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        pass_port: bool = True,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.env = clean_environ(env)
        self.args = list(args)
        self.pass_port = pass_port
        self._dir = Path(tempfile.mkdtemp(prefix="chat-test-server-"))
        self.log_path = self._dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "chat_server"]
        if self.pass_port:
            command += ["--port", str(self.port)]
            if "HOST" not in self.env and "--host" not in self.args:
                command += ["--host", "127.0.0.1"]
        return command + self.args

    def launch(self) -> None:
        """Spawn the process without waiting for it to serve."""
        if self.running:
            return
        self.returncode = None
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until ``GET /healthz`` answers with any HTTP status."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                self.returncode = self._proc.returncode if self._proc else None
                raise RuntimeError(
                    f"chat server exited with {self.returncode} at start-up:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answered, even if not healthy
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"chat server did not answer /healthz within {timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def start(self, timeout: float = 15.0) -> None:
        """Spawn the process and wait until it serves."""
        self.launch()
        self.wait_ready(timeout)

    def stop(self, timeout: float = 10.0, signum: int = signal.SIGTERM) -> int | None:
        """``signum`` (SIGTERM), then SIGKILL after ``timeout`` seconds; returns the exit code.

        Fixtures that only clean up pass ``signal.SIGINT``: the server stops at
        once on it, where SIGTERM drains for a few seconds first.
        """
        if self._proc is None:
            return self.returncode
        if self._proc.poll() is None:
            self._proc.send_signal(signum)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self.returncode = self._proc.returncode
        self._proc = None
        return self.returncode

    def kill(self) -> int | None:
        """SIGKILL: the process dies without a goodbye."""
        if self._proc is None:
            return self.returncode
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self.returncode = self._proc.returncode
        self._proc = None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; returns the exit code."""
        assert self._proc is not None, "not started"
        self.returncode = self._proc.wait(timeout)
        return self.returncode

    def restart(self, timeout: float = 15.0) -> None:
        self.stop()
        self.start(timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # cleaning up, not testing shutdown: SIGINT stops without the SIGTERM drain
        self.stop(signum=signal.SIGINT)
