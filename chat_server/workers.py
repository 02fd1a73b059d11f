"""``--workers N``: N server processes on one port (``SO_REUSEPORT``), linked by Redis.

The kernel spreads new connections over the processes' listening sockets, so
every core serves clients with no proxy in front. Redis links the processes as
it links processes on different ports. A long-polling client makes each
request on a new or pooled connection that may reach any process, and a
process knows no session another one opened, so in this mode the server
speaks WebSocket only and answers long-polling requests with a 400 that says
why (sticky sessions are what a proxy would add, and there is none).

The parent process only supervises: it forwards SIGTERM and SIGINT to the
workers (each then drains as a single process does), restarts a worker that
dies after running a while, and stops everything if one dies at start-up.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from chat_server import logs
from chat_server.core.settings import ConfigError, Settings

__all__ = ["POLLING_REFUSED", "serve", "websocket_only"]

log = logging.getLogger(__name__)

#: A worker that dies sooner than this after starting is not restarted: it
#: would only die again (a bad port, an unreachable import), so all stop.
MIN_UPTIME = 5.0
RESTART_DELAY = 1.0
#: Seconds the workers get to drain after SIGTERM before they are killed.
STOP_TIMEOUT = 15.0
POLLING_REFUSED = (
    "Long-polling is off: this server runs {n} processes on one port without sticky "
    "sessions, so it speaks WebSocket only. Connect with transports: ['websocket']."
)
_PR_SET_PDEATHSIG = 1

RunOne = Callable[[Settings, bool], int]


def websocket_only(workers: int) -> Any:
    """An aiohttp middleware refusing Engine.IO long-polling requests with a reason."""
    message = POLLING_REFUSED.format(n=workers)

    @web.middleware
    def middleware(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
        if request.path.startswith("/socket.io/") and request.query.get("transport") != (
            "websocket"
        ):
            # Engine.IO's "bad request" code, with our reason as its message.
            return _answer(web.json_response({"code": 3, "message": message}, status=400))
        # Not awaited here, so that no frame of this function lives as long
        # as the WebSocket it lets through.
        passed: Awaitable[web.StreamResponse] = handler(request)
        return passed

    return middleware


async def _answer(response: web.StreamResponse) -> web.StreamResponse:
    return response


def serve(settings: Settings, run_one: RunOne, environ: Mapping[str, str]) -> int:
    """Run ``settings.workers`` processes of ``run_one(settings, reuse_port)``."""
    logs.configure_logging(settings.log_level, settings.log_format)
    if settings.workers <= 1:
        asked = environ.get("WEB_CONCURRENCY", "")
        if settings.redis_url is None and asked.isdigit() and int(asked) > 1:
            log.warning(
                "WEB_CONCURRENCY=%s ignored: several processes need REDIS_URL; serving one",
                asked,
            )
        return run_one(settings, False)
    _check_port(settings)
    return _Supervisor(settings, run_one).run()


def _check_port(settings: Settings) -> None:
    """Fail now, with one line, if the port cannot be shared, rather than in every worker."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if not hasattr(socket, "SO_REUSEPORT"):
            raise ConfigError("--workers needs SO_REUSEPORT, which this platform lacks")
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((settings.host, settings.port))


class _Supervisor:
    """The parent of the workers."""

    def __init__(self, settings: Settings, run_one: RunOne) -> None:
        self.settings = settings
        self.run_one = run_one
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
        self.stopping: int | None = None
        self.deadline = 0.0
        self.failed = 0

    def run(self) -> int:
        n = self.settings.workers
        log.info(
            "starting %d workers on %s:%d (WebSocket only)",
            n,
            self.settings.host,
            self.settings.port,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for index in range(n):
            self._spawn(index)
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if self.stopping is not None and time.monotonic() > self.deadline:
                    log.error(
                        "workers still running %.0f s after the signal: killing", STOP_TIMEOUT
                    )
                    self._stop(signal.SIGKILL)
                time.sleep(0.1)
                continue
            index, started = self.children.pop(pid, (-1, 0.0))
            code = os.waitstatus_to_exitcode(status)
            if self.stopping is not None:
                if code not in (0, -signal.SIGINT, -signal.SIGTERM) and not self.failed:
                    self.failed = 1
                continue
            if time.monotonic() - started < MIN_UPTIME:
                log.error("worker %d exited with %d at start-up; stopping", index, code)
                self.failed = code if code > 0 else 1
                self._stop(signal.SIGTERM)
                continue
            log.warning("worker %d (pid %d) exited with %d; starting another", index, pid, code)
            time.sleep(RESTART_DELAY)
            if self.stopping is None:
                self._spawn(index)
        return self.failed

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            os._exit(self._worker())
        self.children[pid] = (index, time.monotonic())

    def _worker(self) -> int:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # Signals reach workers through the parent (a terminal's Ctrl-C would
        # otherwise hit them twice), and a worker whose parent dies ends too.
        os.setpgid(0, 0)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        try:
            return self.run_one(self.settings, True)
        except KeyboardInterrupt:
            return 0
        except OSError as exc:
            print(f"chat_server: error: {exc}", file=sys.stderr)
            return 1
        except BaseException:
            log.exception("worker failed")
            return 1
        finally:
            logging.shutdown()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stopping is None:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.children))
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        if self.stopping is None:
            self.deadline = time.monotonic() + STOP_TIMEOUT
        self.stopping = signum
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
