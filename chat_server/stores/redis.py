"""Redis link health: client options that never hang, and a monitor of Redis's state.

redis-py's defaults suit batch jobs, not a chat: a command waits 5 s for an
answer and is retried ten times, so a frozen Redis would hold a handler for
close to a minute. Every client the server builds takes ``client_options()``:
a short time-out on every call and a single quick retry on a dropped
connection (the usual case right after Redis restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from chat_server.core.metrics import Metrics

__all__ = [
    "COMMAND_TIMEOUT",
    "GuardedRedis",
    "RedisHealth",
    "RedisNotSent",
    "WaitingPool",
    "client_options",
    "outcome_of",
]

log = logging.getLogger(__name__)

#: Seconds one Redis call may take before it fails; Redis answers in well
#: under a millisecond, so anything near this is an outage, not load.
COMMAND_TIMEOUT = 2.0
#: Seconds between two health pings.
PING_INTERVAL = 1.0


def client_options(timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url``: bounded waits, one retry."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # Retry once, and only a connection that broke (not a timeout, which
        # would double the wait on a frozen Redis).
        "retry": Retry(ConstantBackoff(0.05), 1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": 15,
    }


class RedisHealth:
    """Pings Redis every second and remembers whether it answered.

    :param url: the Redis URL.
    :param metrics: its ``chat_redis`` state follows every change.
    :param interval: seconds between pings.

    It uses connections of its own, so that a pool full of stuck commands
    neither hides a healthy Redis nor delays the verdict on a dead one; each
    ping waits at most ``interval`` seconds.
    """

    def __init__(
        self,
        url: str,
        metrics: Metrics,
        *,
        interval: float = PING_INTERVAL,
    ) -> None:
        self.url = url
        self.metrics = metrics
        self.interval = interval
        self.up = False
        self._checked = False
        self._client = aioredis.Redis.from_url(url, **client_options(timeout=interval))

    async def check(self) -> bool:
        """Ping once and record the answer; returns whether Redis is up."""
        try:
            up = bool(await asyncio.wait_for(self._client.ping(), self.interval))
        except Exception as exc:  # any failure to answer means down
            up = False
            reason = str(exc) or type(exc).__name__
        else:
            reason = ""
        if up != self.up or not self._checked:
            if up:
                log.info("Redis is reachable")
            else:
                log.warning("Redis is unreachable: %s", reason)
            self.metrics.set_redis_state("ok" if up else "down")
        self.up, self._checked = up, True
        return up

    async def run(self) -> None:
        """Ping forever, every ``interval`` seconds."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        """Close the health check's own connections."""
        with contextlib.suppress(Exception):
            await self._client.aclose()


class RedisNotSent(RedisConnectionError):
    """A command that never left this process: Redis is known to be down, or no
    connection could be had in time."""


def outcome_of(exc: RedisError) -> str:
    """Whether a failed write may have happened: ``none`` or ``unknown``.

    Only a command that never left this process certainly did nothing; one
    that timed out or lost its connection may have run in Redis.
    """
    return "none" if isinstance(exc, RedisNotSent) else "unknown"


class WaitingPool(aioredis.BlockingConnectionPool):
    """A connection pool where a burst of calls queues for a connection instead of failing.

    :param max_connections: connections at most (``CHAT_REDIS_POOL_SIZE``).
    :param timeout: seconds a call waits for one (``CHAT_REDIS_POOL_WAIT``);
        past it the call fails with ``RedisNotSent``.
    :param metrics: each wait lands in ``chat_redis_pool_wait_seconds``.

    redis-py's default pool refuses the 101st concurrent call ("Too many
    connections"), which turned a reconnect wave into ``unavailable``
    answers while Redis itself was healthy.
    """

    def __init__(self, *, metrics: Metrics | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        except RedisConnectionError as exc:
            # Waited out the pool or failed to connect: nothing was sent.
            raise RedisNotSent(str(exc)) from exc
        finally:
            if self.metrics is not None:
                self.metrics.redis_pool_wait.observe(time.perf_counter() - started)


class GuardedRedis(aioredis.Redis):
    """A Redis client that fails at once while its ``health`` says Redis is down.

    Without it, every command against a frozen Redis waits out its time-out,
    and a client's events, handled one after the other, queue up behind each
    other's waits. Set ``health`` after construction; ``None`` never refuses.
    """

    health: RedisHealth | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        health = self.health
        if health is not None and not health.up:
            raise RedisNotSent("Redis is unreachable (its last health check failed)")
        # redis-py leaves execute_command unannotated.
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
