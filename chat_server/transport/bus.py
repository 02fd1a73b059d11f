"""The Redis fan-out between processes, made to survive Redis going away and coming back.

python-socketio's ``AsyncRedisManager`` publishes inside the emitting handler
(so a frozen Redis freezes the handler), gives up on a message after two
failed attempts, backs off up to 60 s before resubscribing, and cannot tell
a silently dead subscription from a quiet one. ``ResilientRedisManager``
keeps its message format and local delivery, and changes the plumbing:

- publishing goes through a bounded outbox (``outbox.py``) drained by one task, in order, in
  pipelined batches, retried with a short back-off while Redis is away;
  nothing is dropped unless the outbox overflows, and that is counted;
- each published message carries the sender's sequence number, so a batch
  retried after a half-failed attempt is not delivered twice;
- the subscription is pinged when quiet and made again (backing off up to
  2 s) whenever it fails or stops answering; before anything the new one
  brings is delivered, ``gap_filler`` delivers from history what the local
  connections missed meanwhile, and ``on_resubscribed`` then tells the
  clients that live delivery had a gap (for typing and presence);
- messages go on per-room and per-user channels (``routing.py``), and the
  process listens only to those of the rooms and users it holds connections
  of, plus the control channel: a process with no member of a room pays
  nothing for its traffic. Entering a room waits until its channel is
  active, so a ``join`` is never answered before the room's messages can
  reach the connection.

On a Redis Cluster (``redis+cluster://``) the same happens over sharded
pub/sub: ``SPUBLISH`` to each channel's slot, and ``ShardedPubSub``
(``sharded.py``) subscribing on the masters; the control channel is one
shard channel every process subscribes to. Private messages there are
published after their script, so what arrives with an ``order`` passes
through ``Reorder`` (``reorder.py``) before it is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as stdlib_json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
import socketio
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chat_server.core.metrics import Metrics
from chat_server.core.ports import Publication
from chat_server.core.settings import RedisTarget
from chat_server.stores.redis import client_options
from chat_server.transport.fanout import broadcast
from chat_server.transport.gapfill import GapFiller
from chat_server.transport.outbox import Batch, Outbox
from chat_server.transport.reorder import Reorder
from chat_server.transport.roomindex import RoomIndex
from chat_server.transport.routing import Channels, Subscriptions
from chat_server.transport.seqs import Delivered
from chat_server.transport.sharded import ShardedPubSub

__all__ = ["ResilientRedisManager", "pubsub_channel"]

log = logging.getLogger(__name__)

#: Ceiling of the back-off between attempts to resubscribe.
MAX_BACKOFF = 2.0
#: Seconds a pub/sub connection may take to close before it is left behind.
CLOSE_TIMEOUT = 2.0
FIRST_BACKOFF = 0.05
#: The ``method`` of the chat's own control messages on the bus (python-socketio
#: ignores methods it does not know; our listener takes these out first).
CONTROL = "chat_control"
#: Where the stored message goes in a publication's envelope.
_SLOT = "\u0000message\u0000"


class ResilientRedisManager(RoomIndex, socketio.AsyncRedisManager):  # type: ignore[misc]  # untyped base (python-socketio)
    """python-socketio's Redis manager with an outbox, keep-alives and resubscription.

    Each connection's rooms are indexed (``RoomIndex``) so that a disconnect
    does not scan every room of the process.

    :param url: the Redis URL (``redis+cluster://`` for a cluster).
    :param channel: the control channel every process of one chat listens to
        (broadcasts and control messages; everything, with ``per_room`` off).
    :param per_room: route rooms and users on channels of their own (True).
    :param metrics: publish failures, drops, pending messages and resubscribes.
    :param outbox_bytes: bytes of messages kept for Redis while it is away
        (8 MiB); past it the oldest are dropped and counted.
    :param keepalive: seconds of silence on the subscription before it is pinged (5).
    :param keepalive_timeout: seconds to wait for that ping's answer (3).
    :param on_resubscribed: called (no arguments) after a lost subscription is back.
    :param on_control: awaited with each control message another process
        published with ``publish_control``.
    :param redis_options: extra keyword arguments for ``Redis.from_url``.
    :param json: the ``dumps``/``loads`` pair for messages on the bus (the
        standard library's ``json`` by default).
    """

    name = "chat-redis"

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        metrics: Metrics,
        per_room: bool = True,
        outbox_bytes: int = 8 * 1024 * 1024,
        keepalive: float = 5.0,
        keepalive_timeout: float = 3.0,
        on_resubscribed: Callable[[], Any] | None = None,
        redis_options: dict[str, Any] | None = None,
        json: Any = None,
    ) -> None:
        target = RedisTarget.parse(url)
        # The base class gets a URL redis-py reads (python-socketio 5.14.1
        # builds a client of it at once, and redis-py knows no ``+cluster``).
        super().__init__(target.url, channel=channel, redis_options=redis_options)
        # Set here: python-socketio 5.14's managers have no ``json`` of their own.
        self.json = json if json is not None else stdlib_json
        self.metrics = metrics
        self.keepalive = keepalive
        self.keepalive_timeout = keepalive_timeout
        self.on_resubscribed = on_resubscribed
        self.on_control: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.gap_filler: GapFiller | None = None
        self.gap_fill_timeout = 10.0
        self.subscribed = False
        self.names = Channels(channel, per_room=per_room)
        self.subscriptions = Subscriptions(self.names, metrics, on_fresh=self._fresh)
        self.outbox = Outbox(self._send, self._reset_pub_client, metrics, outbox_bytes)
        # Set by aclose(): the listener stops on it even if a cancel is lost.
        self._closing = False
        self._pub_client: aioredis.Redis | None = None
        self._seq = 0
        self._delivered = Delivered()
        self.target = target
        self.reorder = Reorder()
        #: Cluster nodes seen in the last slot table: a new client starts from
        #: them too, so losing the node of the URL does not lose the cluster.
        self._cluster_nodes: set[tuple[str, int]] = set()

    def _client(self, **overrides: Any) -> Any:
        """A client of the Redis, or of the cluster, with ``overrides`` on the usual options."""
        options = {**client_options(), **self.redis_options, **overrides}
        if self.target.cluster:
            known = [ClusterNode(host, port) for host, port in sorted(self._cluster_nodes)]
            return RedisCluster.from_url(self.target.url, startup_nodes=known or None, **options)
        return aioredis.Redis.from_url(self.redis_url, **options)

    def _remember_nodes(self, client: Any) -> None:
        if isinstance(client, RedisCluster):
            found = {(node.host, int(node.port)) for node in client.get_nodes()}
            self._cluster_nodes = found or self._cluster_nodes

    # -- publishing ---------------------------------------------------------------

    async def _publish(self, data: dict[str, Any]) -> None:
        if self._only_local_sids(data):
            # python-socketio publishes an emit to a connection in case it is
            # another process's; a sid of ours was served by the local emit,
            # and no other process holds it (the ``welcome`` of every connect).
            return
        self._seq += 1
        payload = self.json.dumps({**data, "sender": self.host_id, "seq": self._seq})
        # Only emits are addressed to groups; python-socketio's other methods
        # and our control messages concern every process.
        to = data.get("room") if data.get("method") == "emit" else None
        self.outbox.put(payload, tuple(self.names.for_targets(to)))

    def _only_local_sids(self, data: dict[str, Any]) -> bool:
        if data.get("method") != "emit" or data.get("callback") is not None:
            return False
        room = data.get("room")
        targets = [room] if isinstance(room, str) else room
        # python-socketio keeps a namespace's connections as its group None.
        sids = self.rooms.get(data.get("namespace") or "/", {}).get(None, {})
        return (
            isinstance(targets, list)
            and bool(targets)
            and all(isinstance(t, str) and t in sids for t in targets)
        )

    async def _send(self, batch: Batch) -> None:
        if self._pub_client is None:
            self._pub_client = self._client()
        async with self._pub_client.pipeline(transaction=False) as pipe:
            # An emit to several groups goes on each one's channel; a process
            # listening to two of them drops the second copy by its sequence
            # (``seqs.py``).
            send = pipe.spublish if self.target.cluster else pipe.publish
            for payload, _, channels in batch:
                for channel in channels:
                    send(channel, payload)
            await pipe.execute()
        self._remember_nodes(self._pub_client)

    async def _reset_pub_client(self) -> None:
        client, self._pub_client = self._pub_client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def publish_control(self, data: dict[str, Any]) -> None:
        """Publish a control message (``data`` plus its method) for every other process."""
        await self._publish({**data, "method": CONTROL, "host_id": self.host_id})

    async def _control(self, data: dict[str, Any]) -> None:
        if data.get("host_id") == self.host_id or self.on_control is None:
            return  # ours: the sender acted on its own connections already
        try:
            await self.on_control(data)
        except Exception:  # one bad control message must not cost the subscription
            log.exception("control message %r failed", data.get("action"))

    def publication(self, event: str, to: str | list[str]) -> Publication:
        """How the history store publishes ``event`` for ``to`` as it stores it.

        The message python-socketio would publish, with the stored message in
        its ``data`` and no ``host_id``: every process listening to a
        channel of ``to``, the sender's own included, delivers it when it
        hears it, in the order Redis sent it. A private message goes on both
        users' channels; a process holding both hears it twice, and the gap
        filler drops the second copy (same conversation, same id).
        """
        envelope = {
            "method": "emit",
            "event": event,
            "data": [_SLOT],
            "binary": False,
            "namespace": "/",
            "room": to,
            "skip_sid": None,
            "callback": None,
        }
        head, _, tail = self.json.dumps(envelope).partition(self.json.dumps(_SLOT))
        return Publication(tuple(self.names.for_targets(to)), head, tail)

    # -- listening ----------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[dict[str, Any]]:
        backoff, lost = FIRST_BACKOFF, False
        previous: set[str] = set()
        while not self._closing:
            # No retries: redis-py would reconnect and resubscribe behind our
            # back, and the gap it leaves would go unannounced.
            quiet = {"health_check_interval": 0, "retry": Retry(NoBackoff(), 0)}
            client = self._client(**quiet)
            pubsub: Any = (
                ShardedPubSub(client, quiet, self.keepalive_timeout)
                if self.target.cluster
                else client.pubsub()
            )
            try:
                # Every channel with a local member, the control channel too.
                await self.subscriptions.attach(pubsub, previous)
                self._remember_nodes(client)
                self.subscribed = True
                if lost:
                    log.info("subscribed to Redis again")
                    self.metrics.redis_resubscribes.inc()
                    await self._fill_gap()
                    if self.on_resubscribed is not None:
                        self.on_resubscribed()
                elif self.gap_filler is not None:
                    seconds, micros = await client.time()
                    self.gap_filler.start(seconds * 1000 + micros // 1000)
                backoff, lost = FIRST_BACKOFF, False
                async for data in self._messages(pubsub):
                    if data.get("method") == CONTROL:
                        await self._control(data)
                    else:
                        yield data
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost subscription is always retried
                self.subscribed = False
                if not lost:
                    log.warning("lost the Redis subscription (%s); subscribing again", exc)
                lost = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                self.subscribed = False
                # What was held is in history: the gap filler delivers it.
                self.reorder.clear()
                previous = self.subscriptions.detach() or previous
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), CLOSE_TIMEOUT)
        # python-socketio's listener task ends quietly on a cancellation only.
        raise asyncio.CancelledError

    async def _fill_gap(self) -> None:
        """Deliver from history what local connections missed, before the new subscription's news.

        Until this returns nothing is read from the new subscription: Redis
        holds what it brings, so each conversation stays in id order.
        """
        if self.gap_filler is None:
            return
        groups = self.rooms.get("/", {}).items()
        channels = [room for room, members in groups if isinstance(room, str) and members]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gap_fill_timeout
        backoff = FIRST_BACKOFF
        while True:
            try:
                filled = await asyncio.wait_for(
                    self.gap_filler.fill(channels, self._deliver_local), deadline - loop.time()
                )
                break
            except Exception as exc:  # Redis may be back before its health check says so
                if loop.time() + backoff >= deadline:
                    log.warning("could not fill the gap from history (%s); resync only", exc)
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        if filled:
            log.info("delivered %d messages missed while the subscription was down", filled)

    async def _deliver_local(self, event: str, data: dict[str, Any], to: str | list[str]) -> None:
        await broadcast(self, event, data, "/", to, None)

    async def _messages(self, pubsub: Any) -> AsyncIterator[dict[str, Any]]:
        """Messages of one subscription; raises once it fails or stops answering pings."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        pinged_at: float | None = None
        # redis-py's timeout inside get_message() can swallow a cancellation
        # that lands as it fires (seen with redis 5.0.8): the flag still ends
        # the loop within one timeout.
        while not self._closing:
            message = await pubsub.get_message(timeout=self._wait(loop.time()))
            now = loop.time()
            for held in self.reorder.due(now):
                yield held
            if message is None:
                if pinged_at is not None:
                    if now - pinged_at > self.keepalive_timeout:
                        raise ConnectionError("Redis did not answer the subscription's ping")
                elif now - heard > self.keepalive:
                    await pubsub.ping()
                    pinged_at = now
                continue
            heard, pinged_at = now, None
            kind, channel = message.get("type"), message.get("channel")
            if kind == "message":
                self.metrics.bus_messages_received.inc()
                data = self._decode(message.get("data"))
                if data is not None:
                    for ready in self.reorder.offer(data, now):
                        yield ready
            elif kind in ("subscribe", "unsubscribe") and isinstance(channel, bytes):
                self.subscriptions.confirmed(kind, channel.decode())

    def _wait(self, now: float) -> float:
        """Seconds to wait for a message: 1, or less if a held one is due sooner."""
        deadline = self.reorder.next_deadline()
        return 1.0 if deadline is None else min(1.0, max(0.0, deadline - now))

    def _decode(self, raw: Any) -> dict[str, Any] | None:
        try:
            data = self.json.loads(raw)
        except (ValueError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        sender, seq = data.get("sender"), data.get("seq")
        if (
            isinstance(sender, str)
            and isinstance(seq, int)
            and not self._delivered.first(sender, seq)
        ):
            return None  # a copy on another channel, or a retried batch, delivered already
        return data

    # -- delivering -----------------------------------------------------------------

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """Deliver an emit heard on the bus (ours or another process's) to local clients."""
        if message.get("callback") is not None or message.get("binary"):
            await super()._handle_emit(message)
            return
        data = message["data"]
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else tuple(data)
        if self.gap_filler is not None and not self.gap_filler.hear(message["event"], data):
            return  # delivered already, from history, after a lost subscription
        await broadcast(
            self,
            message["event"],
            data,
            message.get("namespace"),
            message.get("room"),
            message.get("skip_sid"),
        )

    # -- local members decide the channels ---------------------------------------------

    async def enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Add ``sid`` to ``room``; return once ``room``'s channel is active.

        A ``join`` is answered after this, and its history read after it: a
        message stored later reaches the connection live.
        """
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = self.names.of(room)
        if channel is not None and self._has_members(room):
            self.subscriptions.want(channel)
            await self.subscriptions.ready(channel)

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Take ``sid`` out of ``room``; the last local member out unsubscribes."""
        await super().leave_room(sid, namespace, room)
        self._drop_empty([room])

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget ``sid``; the channels of the groups it was the last local member of go."""
        groups = self.get_rooms(sid, namespace)
        await super().disconnect(sid, namespace, **kwargs)
        self._drop_empty(groups)

    async def close_room(self, room: Any, namespace: str | None = None) -> None:
        """Empty ``room`` here and everywhere; its channel goes."""
        await super().close_room(room, namespace)
        self._drop_empty([room])

    def _has_members(self, group: Any) -> bool:
        return any(group in groups for groups in self.rooms.values())

    def _drop_empty(self, groups: list[Any]) -> None:
        for group in groups:
            channel = self.names.of(group)
            if channel is not None and not self._has_members(group):
                self.subscriptions.drop(channel)

    def _fresh(self, channel: str) -> None:
        group = self.names.group(channel)
        if group is not None and self.gap_filler is not None:
            self.gap_filler.forget(group)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe now rather than on the first connection, as python-socketio would."""
        if getattr(self.server, "manager_initialized", False):
            return
        self.server.manager_initialized = True
        self.initialize()

    async def aclose(self) -> None:
        """Stop listening and publishing; close every Redis connection."""
        self._closing = True
        tasks = [t for t in (getattr(self, "thread", None), self.outbox.task) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT + 1.5)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved, so never logged as unhandled
        await self.subscriptions.aclose()
        await self._reset_pub_client()


def pubsub_channel(redis_url: str) -> str:
    """The pub/sub channel of the chat living in ``redis_url``'s database.

    Redis pub/sub ignores database numbers; naming the channel after the
    database keeps two chats on one Redis (``/0`` and ``/1``) apart.
    """
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])[0]
    else:
        db = parts.path.strip("/") or "0"
    return f"chat:{db}:socketio"
