"""Sharded pub/sub on a Redis Cluster, behind the face of one plain pub/sub connection.

On a cluster each channel lives in a slot, and ``SSUBSCRIBE`` must reach the
master serving it. ``ShardedPubSub`` keeps one pub/sub connection per master
that serves a channel wanted here, reads them all, and hands the bus
(``bus.py``) one stream of messages shaped as on one Redis (``subscribe``,
``unsubscribe``, ``message``), so the bus's bookkeeping (``routing.py``:
subscribe on the first local member, confirm before a join's ack) is the same
code on both.

It never repairs itself: a node's connection that breaks, a ping a node does
not answer, an ``SSUBSCRIBE`` answered ``MOVED``, or a slot that moves away
(Redis then ends its channels' subscriptions unasked, with ``sunsubscribe``)
all end the stream with ``ConnectionError``. The bus then subscribes again
from a fresh slot table and fills the gap from history, as it does after a
plain Redis restarts; redis-py's own ``ClusterPubSub`` would move channels
behind the bus's back and leave that gap unannounced.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

__all__ = ["ShardedPubSub"]

#: Seconds a connection may take to close before it is left behind.
CLOSE_TIMEOUT = 2.0
#: Message types of sharded pub/sub, as the bus knows them from plain pub/sub.
_KINDS = {"ssubscribe": "subscribe", "sunsubscribe": "unsubscribe", "smessage": "message"}


class ShardedPubSub:
    """One stream of sharded pub/sub messages from every master a channel lives on.

    :param cluster: the cluster client whose slot table places each channel
        (it is initialized on the first subscription).
    :param options: keyword arguments for each node's ``redis.asyncio.Redis``
        (time-outs; no retries, so that a lost connection is not silently remade).
    :param ping_timeout: seconds each node has to answer ``ping()``.
    """

    def __init__(
        self, cluster: RedisCluster, options: dict[str, Any], ping_timeout: float = 3.0
    ) -> None:
        self.cluster = cluster
        self.options = options
        self.ping_timeout = ping_timeout
        self._nodes: dict[str, tuple[aioredis.Redis, Any]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._leaving: collections.Counter[bytes] = collections.Counter()
        self._unanswered: set[str] = set()
        self._pinged_at = 0.0
        self._initialized = False

    async def _node(self, channel: str) -> Any:
        if not self._initialized:
            await self.cluster.initialize()
            self._initialized = True
        node = self.cluster.get_node_from_key(channel)
        if node is None:
            raise ConnectionError(f"no cluster node serves the slot of {channel}")
        found = self._nodes.get(node.name)
        if found is None:
            # The node's own settings (credentials, TLS: transport/compat.py), then ours.
            kwargs = {**node.connection_kwargs, **self.options}
            pool = aioredis.ConnectionPool(connection_class=node.connection_class, **kwargs)
            client = aioredis.Redis(connection_pool=pool)
            client.auto_close_connection_pool = True
            found = (client, client.pubsub())
            self._nodes[node.name] = found
        return node.name, found[1]

    async def subscribe(self, *channels: str) -> None:
        """``SSUBSCRIBE`` each channel on its master (one command per channel: one slot each)."""
        for channel in channels:
            name, pubsub = await self._node(channel)
            await pubsub.ssubscribe(channel)
            if name not in self._readers:
                self._readers[name] = asyncio.get_running_loop().create_task(
                    self._read(name, pubsub)
                )

    async def unsubscribe(self, *channels: str) -> None:
        """``SUNSUBSCRIBE`` each channel on its master."""
        for channel in channels:
            _, pubsub = await self._node(channel)
            self._leaving[channel.encode()] += 1
            await pubsub.sunsubscribe(channel)

    async def ping(self) -> None:
        """Ping every node; ``get_message`` fails if one does not answer in time."""
        self._unanswered = set(self._nodes)
        self._pinged_at = asyncio.get_running_loop().time()
        for _, pubsub in self._nodes.values():
            await pubsub.ping()

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109 - the call of redis-py's PubSub
        """The next message of any node, or None after ``timeout`` seconds of silence."""
        loop = asyncio.get_running_loop()
        if self._unanswered and loop.time() - self._pinged_at > self.ping_timeout:
            raise ConnectionError("a cluster node did not answer the subscription's ping")
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def _read(self, name: str, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._hand_on(name, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bus resubscribes from scratch
            self._queue.put_nowait(ConnectionError(f"cluster node {name}: {exc}"))

    def _hand_on(self, name: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "pong":
            self._unanswered.discard(name)
            if not self._unanswered:
                self._queue.put_nowait(message)
            return
        if kind == "sunsubscribe":
            channel = message.get("channel")
            if isinstance(channel, bytes) and self._leaving[channel] > 0:
                self._leaving[channel] -= 1
            else:
                # Unasked: the slot moved to another node (resharding, failover).
                self._queue.put_nowait(ConnectionError(f"{channel!r} left {name}: slot moved"))
                return
        if isinstance(kind, str) and kind in _KINDS:
            self._queue.put_nowait({**message, "type": _KINDS[kind]})

    async def aclose(self) -> None:
        """Stop reading and close every node's connection."""
        for task in self._readers.values():
            task.cancel()
        for task in self._readers.values():
            with contextlib.suppress(BaseException):
                await task
        for client, pubsub in self._nodes.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), CLOSE_TIMEOUT)
        self._readers.clear()
        self._nodes.clear()
