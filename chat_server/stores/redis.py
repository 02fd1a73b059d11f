"""Redis link health: clients that never hang, a monitor of Redis's state, start-up checks.

redis-py's defaults suit batch jobs, not a chat: a command waits 5 s for an
answer and is retried ten times, so a frozen Redis would hold a handler for
close to a minute. Every client the server builds takes ``client_options()``:
a short time-out on every call and a single quick retry on a dropped
connection (the usual case right after Redis restarts).

``connect`` builds the client a process uses: ``GuardedRedis`` on one Redis,
``GuardedRedisCluster`` on a Redis Cluster (``redis+cluster://``), each
failing at once while ``RedisHealth`` says Redis is down. ``check_server``
runs before the server starts and refuses a URL whose kind does not match
the server it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from chat_server.core.metrics import Metrics
from chat_server.core.settings import RedisTarget

__all__ = [
    "COMMAND_TIMEOUT",
    "GuardedRedis",
    "GuardedRedisCluster",
    "RedisHealth",
    "RedisNotSent",
    "WaitingPool",
    "check_server",
    "client_options",
    "cluster_verdict",
    "connect",
    "outcome_of",
    "redacted",
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


def _plain_client(url: str, timeout: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, **client_options(timeout=timeout))


def _cluster_client(url: str, timeout: float, max_connections: int = 64) -> RedisCluster:
    options = client_options(timeout=timeout)
    # Slot moves (MOVED, ASK) are followed by the client itself; Retry only
    # covers a node whose connection broke, as on one Redis.
    return RedisCluster.from_url(url, max_connections=max_connections, **options)


class RedisHealth:
    """Pings Redis every second and remembers whether it answered.

    :param url: the Redis URL (``redis+cluster://`` for a cluster: up while
        it answers and ``CLUSTER INFO`` says every slot is served).
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
        target = RedisTarget.parse(url)
        self._cluster: RedisCluster | None = None
        self._client: aioredis.Redis | None = None
        if target.cluster:
            self._cluster = _cluster_client(target.url, interval, max_connections=2)
        else:
            self._client = _plain_client(url, interval)

    async def _ask(self) -> bool:
        if self._cluster is None:
            assert self._client is not None
            return bool(await self._client.ping())
        return await self._ask_cluster(self._cluster)

    async def _ask_cluster(self, cluster: RedisCluster) -> bool:
        """Whether a node of the cluster answers ``CLUSTER INFO`` with ``cluster_state:ok``.

        One node's view is enough: each knows whether every slot is served.
        A node that does not answer says nothing of the others (a master
        killed and already replaced by its replica stays in the client's
        list until it refreshes), so the next one, in random order, is asked.
        """
        await cluster.initialize()
        nodes = cluster.get_nodes()
        random.shuffle(nodes)
        silent: Exception = ConnectionError("the cluster client knows no node")
        for node in nodes:
            try:
                info = await cluster.cluster_info(target_nodes=node)
            except (RedisError, OSError) as exc:
                silent = exc
                continue
            state = _text(info.get("cluster_state", "")) if isinstance(info, dict) else ""
            if state != "ok":
                raise ConnectionError(f"the cluster's state is {state or 'unknown'}")
            return True
        raise silent

    async def check(self) -> bool:
        """Ping once and record the answer; returns whether Redis is up."""
        try:
            up = await asyncio.wait_for(self._ask(), self.interval)
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
        for client in (self._client, self._cluster):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()


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


class GuardedRedisCluster(RedisCluster):
    """``GuardedRedis`` for a Redis Cluster: fails at once while ``health`` says it is down.

    redis-py's cluster client keeps a pool per node that refuses a call past
    its size instead of queueing it, so calls queue here, on ``waiting``
    (set by ``connect``), for at most its wait; each wait lands in
    ``chat_redis_pool_wait_seconds`` as on one Redis.
    """

    health: RedisHealth | None = None
    waiting: _Waiting | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        health = self.health
        if health is not None and not health.up:
            raise RedisNotSent("Redis is unreachable (its last health check failed)")
        waiting = self.waiting
        if waiting is None:
            return await super().execute_command(*args, **options)
        await waiting.acquire()
        try:
            return await super().execute_command(*args, **options)
        finally:
            waiting.release()


class _Waiting:
    """At most ``size`` calls at once; the others wait up to ``timeout`` seconds."""

    def __init__(self, size: int, timeout: float, metrics: Metrics | None) -> None:
        self._slots = asyncio.Semaphore(size)
        self.timeout = timeout
        self.metrics = metrics

    async def acquire(self) -> None:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout)
        except TimeoutError:
            raise RedisNotSent("no Redis connection was free in time") from None
        finally:
            if self.metrics is not None:
                self.metrics.redis_pool_wait.observe(time.perf_counter() - started)

    def release(self) -> None:
        self._slots.release()


def connect(
    target: RedisTarget, *, pool_size: int, pool_wait: float, metrics: Metrics | None
) -> GuardedRedis | GuardedRedisCluster:
    """The Redis client of one process: bounded waits, no retry storms, a bounded pool."""
    if target.cluster:
        cluster = GuardedRedisCluster.from_url(
            target.url, max_connections=pool_size, **client_options()
        )
        assert isinstance(cluster, GuardedRedisCluster)  # from_url builds its own class
        cluster.waiting = _Waiting(pool_size, pool_wait, metrics)
        return cluster
    pool = WaitingPool.from_url(
        target.url,
        max_connections=pool_size,
        timeout=pool_wait,
        metrics=metrics,
        **client_options(),
    )
    client = GuardedRedis(connection_pool=pool)
    client.auto_close_connection_pool = True
    return client


def cluster_verdict(target: RedisTarget, info: dict[str, Any], sharded: bool) -> str | None:
    """Why ``target`` cannot be used with the server described, or None when it can.

    :param info: the server's ``INFO`` (``cluster_enabled``, ``redis_version``).
    :param sharded: whether the server knows ``SPUBLISH`` (Redis 7, Valkey 7.2).
    """
    enabled = str(info.get("cluster_enabled", 0)) == "1"
    where = f"REDIS_URL ({redacted(target.url)})"
    if target.cluster and not enabled:
        return (
            f"{where} names a Redis Cluster (+cluster) but the server is a plain Redis"
            " (cluster_enabled:0); use redis:// or rediss://"
        )
    if not target.cluster and enabled:
        return (
            f"{where} names one Redis but the server is a Redis Cluster node"
            " (cluster_enabled:1); use redis+cluster:// or rediss+cluster://"
        )
    if target.cluster and not sharded:
        version = info.get("redis_version", "unknown")
        return (
            f"{where}: the cluster's servers (version {version}) lack sharded pub/sub"
            " (SPUBLISH); the chat needs Redis 7.0 or Valkey 7.2 and newer"
        )
    return None


async def check_server(target: RedisTarget, wait: float = COMMAND_TIMEOUT) -> str | None:
    """Ask the server ``target`` names what it is; an error line, or None to go on.

    A server that does not answer is no reason to refuse to start (the
    health check reports it, and the chat serves once it is back).
    """
    client = _plain_client(target.url, wait)
    try:
        info = await client.info("all")
        found = await client.execute_command("COMMAND", "INFO", "SPUBLISH")  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        sharded = any(found)
    except RedisError as exc:
        log.warning("could not check the Redis server at start-up: %s", exc)
        return None
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
    return cluster_verdict(target, info, sharded)


def redacted(url: str) -> str:
    """``url`` without its password: logs are not the place for it."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.rpartition("@")[2]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
