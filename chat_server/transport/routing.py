"""Per-room routing on the bus: which channel each message goes on, which a process listens to.

Every room and every user has a pub/sub channel of its own; a process
subscribes to the channel of each room and user it holds connections of, so
it hears nothing of the rooms it has no member in. One more channel, the
chat's control channel, carries what is addressed to nobody in particular:
broadcasts, control messages between processes, emits to a single
connection. Every process listens to it.

``Channels`` names the channels; ``Subscriptions`` keeps one pub/sub
connection's subscriptions in step with the local members, and tells a
joining connection when its channel is active, so that its ``join`` is not
answered before messages of the room can reach it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from chat_server.core.metrics import Metrics

__all__ = ["Channels", "Subscriptions"]

log = logging.getLogger(__name__)

#: Transport groups that have a channel of their own (``core.service``'s
#: ``room_channel`` and ``user_channel``); anything else (a connection's sid)
#: goes on the control channel.
ROUTED_PREFIXES = ("room:", "user:")
#: Channels named in one SUBSCRIBE or UNSUBSCRIBE at most.
COMMAND_BATCH = 500
#: Seconds a joining connection waits for its channel's confirmation at most.
READY_TIMEOUT = 10.0


class Channels:
    """The names of one chat's bus channels.

    :param control: the channel every process listens to (the chat's
        historical single channel, ``chat:<db>:socketio``).
    :param per_room: route rooms and users on channels of their own (True);
        False puts everything on ``control``, as the single-channel design did.

    A room's channel is ``chat:<db>:{room:<name>}`` and a user's
    ``chat:<db>:{user:<name>}``: the group sits in a hash tag, as the room
    store's keys do, so a Redis Cluster can place a room's channel with its
    keys (sharded pub/sub) without renaming anything.
    """

    def __init__(self, control: str, *, per_room: bool = True) -> None:
        self.control = control
        self.per_room = per_room
        self._base = control.rpartition(":")[0] or control

    def of(self, group: Any) -> str | None:
        """The channel of transport group ``group``; None when it has none of its own."""
        if (
            not self.per_room
            or not isinstance(group, str)
            or not group.startswith(ROUTED_PREFIXES)
        ):
            return None
        return f"{self._base}:{{{group}}}"

    def group(self, channel: str) -> str | None:
        """The transport group whose channel is ``channel``; None for the control channel."""
        prefix = f"{self._base}:{{"
        if channel.startswith(prefix) and channel.endswith("}"):
            return channel[len(prefix) : -1]
        return None

    def for_targets(self, to: str | list[str] | None) -> list[str]:
        """The channels an emit to ``to`` (a group, a list of them, or everyone) goes on."""
        targets: Iterable[Any] = [None] if to is None else [to] if isinstance(to, str) else to
        found = [self.of(group) or self.control for group in targets]
        return list(dict.fromkeys(found)) or [self.control]


class Subscriptions:
    """One pub/sub connection's channels, kept in step with the groups that have local members.

    :param channels: the chat's channel names.
    :param metrics: the gauge of channels subscribed.
    :param on_fresh: called with each channel that becomes active on a
        connection that was already listening (not after a lost one): what was
        heard of it before is stale.

    ``want`` and ``drop`` are called as local members come and go; one task
    sends the SUBSCRIBE and UNSUBSCRIBE commands, batched. Redis confirms each
    command on the connection, in order, in the stream of messages; the
    listener hands those confirmations to ``confirmed``. A channel is active
    once every command sent for it is confirmed and the last was a SUBSCRIBE:
    from then on Redis delivers every message published on it.
    """

    def __init__(
        self,
        channels: Channels,
        metrics: Metrics,
        on_fresh: Callable[[str], None] | None = None,
    ) -> None:
        self.channels = channels
        self.metrics = metrics
        self.on_fresh = on_fresh
        #: Channels with a local member (the control channel is always wanted).
        self.wanted: set[str] = set()
        self._pubsub: Any = None
        self._requested: set[str] = set()
        self._pending: collections.Counter[str] = collections.Counter()
        self._fresh: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._lock = asyncio.Lock()
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- what the local members need ---------------------------------------------

    def want(self, channel: str) -> None:
        """A group of ``channel`` has its first local member."""
        if channel not in self.wanted:
            self.wanted.add(channel)
            self._kick()

    def drop(self, channel: str) -> None:
        """The last local member of ``channel``'s group left."""
        if channel in self.wanted:
            self.wanted.discard(channel)
            self._kick()

    def active(self, channel: str) -> bool:
        """Whether Redis confirmed ``channel`` on the current connection."""
        return channel in self._requested and not self._pending[channel]

    async def ready(self, channel: str) -> None:
        """Return once ``channel`` is active, or at once while the connection is down.

        While the subscription is down there is nothing to wait for: the
        channel is subscribed with the rest when it is back, and the gap
        filler then delivers from history what was stored meanwhile.
        """
        if self._pubsub is None or self.active(channel) or channel not in self.wanted:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), READY_TIMEOUT)
        except TimeoutError:
            log.warning("Redis did not confirm the subscription to %s in time", channel)
        finally:
            waiters = self._waiters.get(channel, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(channel, None)

    # -- the connection --------------------------------------------------------------

    async def attach(self, pubsub: Any, previous: set[str]) -> None:
        """Subscribe a new pub/sub connection to the control channel and every wanted one.

        ``previous`` holds the channels active on the connection that was
        lost (empty at start-up); those of the others are forgotten at once
        (``on_fresh``), before the gap is filled.
        """
        async with self._lock:
            self._pubsub = pubsub
            self._requested, self._pending, self._fresh = set(), collections.Counter(), set()
            wanted = [self.channels.control, *sorted(self.wanted)]
            for batch in _batches(wanted):
                await pubsub.subscribe(*batch)
                self._requested.update(batch)
                self._pending.update(batch)
            if self.on_fresh is not None:
                for channel in self.wanted - previous:
                    self.on_fresh(channel)
        self._kick()

    def detach(self) -> set[str]:
        """The connection was lost: release every waiter; the channels that were active."""
        active = {c for c in self._requested if not self._pending[c]}
        self._pubsub = None
        self._requested, self._pending, self._fresh = set(), collections.Counter(), set()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self.metrics.bus_channels.set(0)
        return active

    def confirmed(self, kind: str, channel: str) -> None:
        """Redis confirmed a SUBSCRIBE or UNSUBSCRIBE of ``channel`` (in stream order)."""
        if self._pending[channel] > 0:
            self._pending[channel] -= 1
        if self._pending[channel]:
            return
        del self._pending[channel]
        if kind == "subscribe" and channel in self._requested:
            if channel in self._fresh:
                self._fresh.discard(channel)
                if self.on_fresh is not None:
                    self.on_fresh(channel)
            for waiter in self._waiters.get(channel, []):
                if not waiter.done():
                    waiter.set_result(None)
        self.metrics.bus_channels.set(len(self._requested))

    # -- the task that sends the commands ------------------------------------------

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to send yet
                self._changed = asyncio.Event()
                self._task = asyncio.get_running_loop().create_task(self._run())
        if self._changed is not None:
            self._changed.set()

    async def _run(self) -> None:
        assert self._changed is not None
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._sync()
            except Exception as exc:  # the listener notices a broken connection and resubscribes
                log.debug("could not change the bus subscriptions (%s)", exc)

    async def _sync(self) -> None:
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            extra = self._requested - self.wanted - {self.channels.control}
            missing = self.wanted - self._requested
            for batch in _batches(sorted(extra)):
                self._requested.difference_update(batch)
                self._pending.update(batch)
                await pubsub.unsubscribe(*batch)
            for batch in _batches(sorted(missing)):
                self._requested.update(batch)
                self._pending.update(batch)
                self._fresh.update(batch)
                await pubsub.subscribe(*batch)

    async def aclose(self) -> None:
        """Stop the task that sends the commands."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _batches(channels: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(channels), COMMAND_BATCH):
        yield channels[start : start + COMMAND_BATCH]
