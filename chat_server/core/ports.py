"""The ports of the chat's rules: what ``ChatService`` needs of storage and transport.

Each is a small ``Protocol``; ``stores/`` holds a memory and a Redis flavour of
the storage ports, ``transport/`` the delivery over Socket.IO. Defining them
here keeps ``core`` free of every library it is served by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chat_server.core.changes import Change

__all__ = [
    "ONCE_SECONDS",
    "Bans",
    "Changed",
    "Delivery",
    "Directory",
    "History",
    "HookEvent",
    "Idempotency",
    "Job",
    "Markers",
    "Page",
    "Presence",
    "Publication",
    "Record",
    "RoomAccess",
    "RoomState",
    "Rooms",
    "WebhookQueue",
]

Record = dict[str, Any]

#: Seconds an idempotency key (a user's ``client_id``) is remembered.
ONCE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class Page:
    """Messages after a known id, and whether none between was trimmed away.

    ``updates`` holds the current state of kept messages at or before that id
    changed after it, oldest ``rev`` first.
    """

    messages: list[Record]
    recovered: bool
    updates: list[Record]


@dataclass(frozen=True, slots=True)
class Changed:
    """A change a store made: the message as it now is, and whether it moved.

    ``changed`` is False when the message already was as asked (a reaction
    added twice): then nothing was stored or published and ``rev`` stayed.
    """

    message: Record
    changed: bool


@dataclass(frozen=True, slots=True)
class Publication:
    """How a store announces a message in the same atomic step that stores it.

    The store publishes ``head + message + tail`` on each of ``channels``
    (a room's, or both users' of a private message), where ``message`` is the
    stored message's JSON with its ``id`` and ``ts``. As the id is taken and
    the message published in one step, every subscriber hears one
    conversation's messages in id order (issue 16; docs/delivery.md). Channel
    names hold no space. ``head + message + tail`` is one JSON object: a
    store that must publish from outside its atomic step (a private message
    on a Redis Cluster) adds an ``order`` member before its closing brace.
    """

    channels: tuple[str, ...]
    head: str
    tail: str


@dataclass(slots=True)
class HookEvent:
    """A webhook event a store queues in the same atomic step that stores its message.

    The event's ``data`` is the stored message, so it can only be written
    once the message has its id: a store that holds the webhook queue too
    (one Redis: the stream beside the history) writes it there and then,
    sparing the chat path a round trip per message. One job per URL, as
    ``Webhooks.notify`` queues them; the store sets ``queued`` to the number
    it wrote (0 if the queue refused them).
    """

    type: str
    event_id: str
    urls: tuple[str, ...]
    queued: int = 0


class History(Protocol):
    """Where messages are kept; every record returned carries its ``id`` and ``ts``."""

    #: Whether ``append`` and ``append_once`` take a ``hook``; a store that
    #: does not, ignores it, and the caller queues the event afterwards.
    queues_hooks: bool

    async def append(
        self,
        key: str,
        record: Record,
        publication: Publication | None = None,
        hook: HookEvent | None = None,
    ) -> Record:
        """Store ``record`` as the newest message of ``key``; return it with id and ts.

        With ``publication``, the message is also published as it is stored
        (a store that cannot publish refuses it with ``NotImplementedError``);
        with ``hook``, its webhook event is queued in the same step.
        """
        ...

    async def append_once(
        self,
        key: str,
        record: Record,
        once: str,
        publication: Publication | None = None,
        hook: HookEvent | None = None,
    ) -> tuple[Record, bool]:
        """``append``, unless a message was stored under idempotency key ``once``.

        Returns the stored message and ``False``; or, when ``once`` was used
        in the last ``ONCE_SECONDS`` (in any conversation), a record with the
        first message's ``id`` and ``ts`` and ``True``, having stored,
        published and queued nothing. Racing calls with one key store exactly once.
        """
        ...

    async def latest(self, key: str, limit: int) -> list[Record]:
        """The newest ``limit`` messages, oldest first."""
        ...

    async def before(self, key: str, before: str | None, limit: int) -> list[Record]:
        """The newest ``limit`` messages older than id ``before``, oldest first."""
        ...

    async def after(self, key: str, since: str) -> Page:
        """Every kept message newer than id ``since``, oldest first, and the updates."""
        ...

    async def change(
        self,
        key: str,
        message_id: str,
        change: Change,
        publication: Publication | None = None,
    ) -> Changed:
        """Apply ``change`` (``core.changes``) to message ``message_id`` of ``key`` atomically.

        A change takes a fresh ``rev`` from the sequence ids come from, and
        with ``publication`` the new state is published in the same step, so
        every subscriber hears one message's changes in ``rev`` order.
        Raises ``ChatError`` (``not_found``, ``forbidden``, ``invalid``).
        """
        ...

    async def unread(self, key: str, user: str, marker: str | None) -> int:
        """Kept messages after id ``marker`` (all, if None) not from ``user``, not deleted."""
        ...


class Markers(Protocol):
    """Each user's read marker per conversation, only ever moving forward."""

    async def mark(self, user: str, key: str, message_id: str) -> tuple[str, bool]:
        """Move ``user``'s marker in ``key`` to ``message_id`` unless it is past it.

        Returns the marker kept and whether it moved.
        """
        ...

    async def get_many(self, user: str, keys: list[str]) -> list[str | None]:
        """``user``'s markers in ``keys``, None where there is none."""
        ...


class Presence(Protocol):
    """Users per room, counted once however many connections they hold."""

    async def add(self, room: str, user: str) -> bool:
        """This process now holds ``user`` in ``room``; True if new to the chat."""
        ...

    async def remove(self, room: str, user: str) -> bool:
        """This process no longer holds ``user`` in ``room``; True if gone from the chat."""
        ...

    async def present(self, room: str, user: str) -> bool:
        """Whether ``user`` is in ``room`` on any process (one lookup, not ``members``)."""

    async def members(self, room: str) -> list[str]:
        """Usernames present in ``room``, sorted by code point."""
        ...


class Directory(Protocol):
    """Each user's private conversation partners, by latest activity."""

    async def touch(self, a: str, b: str, ts: int) -> None:
        """Record that ``a`` and ``b`` exchanged a message at ``ts`` (ms)."""
        ...

    async def partners(self, user: str, limit: int) -> list[str]:
        """The ``limit`` users ``user`` talked with most recently, newest first."""
        ...

    async def active_since(self, user: str, ms: int, limit: int) -> list[str]:
        """Up to ``limit`` partners whose latest message with ``user`` is at ``ms`` or later."""
        ...


class Bans(Protocol):
    """Users refused a connection for a while, on every process."""

    async def ban(self, user: str, seconds: int) -> None:
        """Refuse ``user``'s connections for the next ``seconds`` (replacing any ban)."""
        ...

    async def remaining(self, user: str) -> float:
        """Seconds ``user`` stays banned; 0 when not banned."""
        ...


class Idempotency(Protocol):
    """Answers of REST emits by ``Idempotency-Key``, shared by every process.

    An entry is ``{"fingerprint": str, "answer": Record | None}``; ``answer``
    is ``None`` while the request that claimed the key is still running.
    """

    async def claim(self, key: str, fingerprint: str, seconds: int) -> Record | None:
        """Claim ``key`` for ``seconds`` atomically: ``None`` if this caller won it.

        Otherwise the entry someone else left, so a racing duplicate never
        runs twice.
        """
        ...

    async def complete(self, key: str, fingerprint: str, answer: Record, seconds: int) -> None:
        """Keep ``answer`` as ``key``'s for the next ``seconds``."""
        ...

    async def release(self, key: str) -> None:
        """Forget ``key`` (its request failed, so a retry may run it)."""
        ...


@dataclass(frozen=True, slots=True)
class RoomState:
    """A created room as its registry keeps it.

    ``members`` holds the owner, the moderators and everyone invited; in a
    public room it only matters for who was invited.
    """

    name: str
    private: bool
    topic: str
    owner: str
    created_ts: int
    moderators: frozenset[str]
    members: frozenset[str]


@dataclass(frozen=True, slots=True)
class RoomAccess:
    """What a ``join`` needs to know about one user in one room, read in one step.

    ``created`` is False for a room nobody created (then the rest is False);
    ``ban_until`` is ``None`` when not banned, 0 for a ban without end, else
    the epoch milliseconds the ban lapses at.
    """

    created: bool
    private: bool
    member: bool
    ban_until: int | None


class Rooms(Protocol):
    """The registry of created rooms: settings, members, moderators and bans.

    Each method is one atomic step of the store; who may call which is the
    rules' business (``core/permissions.py``), not the store's.
    """

    async def create(
        self, room: str, owner: str, *, private: bool, topic: str, created_ts: int
    ) -> RoomState | None:
        """Create ``room`` owned by ``owner``; ``None`` when it was created before.

        Of racing creations, on any process, exactly one succeeds.
        """
        ...

    async def state(self, room: str) -> RoomState | None:
        """The room's settings and lists; ``None`` for a room nobody created."""
        ...

    async def access(self, room: str, user: str, now_ms: int) -> RoomAccess:
        """Whether ``room`` was created, is private, has ``user`` as member, bans them now."""
        ...

    async def set_topic(self, room: str, topic: str) -> bool:
        """Replace the topic; False for a room nobody created."""
        ...

    async def add_member(self, room: str, user: str) -> bool:
        """Make ``user`` a member; False for a room nobody created."""
        ...

    async def remove_member(self, room: str, user: str) -> None:
        """Take ``user`` off the members and the moderators (never the owner)."""
        ...

    async def set_moderator(self, room: str, user: str, moderator: bool) -> bool:
        """Make ``user`` a moderator (and a member), or a plain member again.

        False for a room nobody created, or when ``user`` is its owner.
        """
        ...

    async def ban(self, room: str, user: str, until_ms: int) -> None:
        """Ban ``user`` from ``room`` until ``until_ms`` (0: until unbanned), replacing any ban."""
        ...

    async def unban(self, room: str, user: str) -> bool:
        """Lift a ban; True when there was one."""
        ...

    async def bans(self, room: str, now_ms: int) -> dict[str, int]:
        """The bans in force at ``now_ms``: user -> lapse time in ms (0: no end)."""
        ...


class Delivery(Protocol):
    """What the service needs of the transport: groups of connections, and emits."""

    async def enter(self, sid: str, channel: str) -> None:
        """Add connection ``sid`` to ``channel`` in this process."""
        ...

    async def leave(self, sid: str, channel: str) -> None:
        """Remove connection ``sid`` from ``channel``."""
        ...

    async def emit(
        self,
        event: str,
        data: dict[str, Any],
        *,
        to: str | list[str] | None = None,
        skip_sid: str | None = None,
    ) -> None:
        """Send ``event`` to the channel(s) ``to`` (everyone if None) on every process."""
        ...

    def publication(self, event: str, to: str | list[str]) -> Publication | None:
        """How the history store should publish ``event`` to ``to`` as it stores it.

        ``None`` when every recipient is in this process: the service then
        emits right after storing, with nothing in between to reorder them.
        """
        ...

    async def disconnect_user(self, user: str, notice: dict[str, Any]) -> int:
        """Close every connection of ``user`` on every process, sending ``notice`` first.

        Returns how many were closed on this process.
        """
        ...

    async def evict(self, room: str, user: str, notice: dict[str, Any]) -> None:
        """Ask every other process to take ``user``'s connections out of ``room``.

        Each tells those connections ``kicked`` ``notice`` first (the
        service's ``evict_local``); this process has done its own already.
        """
        ...


@dataclass(slots=True)
class Job:
    """One event on its way to one URL.

    :param url: where it goes.
    :param event_id: the event's ``id`` (the same for every URL).
    :param type: the event's ``type``.
    :param ts: milliseconds since the epoch when the event happened; its age
        decides when retries stop.
    :param body: the JSON body, encoded once, sent unchanged on every attempt.
    :param ref: the queue's handle on it (a Redis stream entry id), if any.
    :param attempt: attempts made so far by the process holding it.
    """

    url: str
    event_id: str
    type: str
    ts: int
    body: bytes
    ref: str | None = None
    attempt: int = 0


class WebhookQueue(Protocol):
    """Where events wait for delivery, shared by every process in Redis mode."""

    async def put(self, jobs: list[Job]) -> int:
        """Queue ``jobs``; how many were taken (the others overflowed the cap)."""

    async def take(self, limit: int, wait: float) -> list[Job]:
        """Up to ``limit`` jobs for this process to deliver, waiting ``wait`` s for one.

        In Redis mode this includes jobs whose process stopped answering.
        """

    async def done(self, jobs: list[Job]) -> None:
        """Forget ``jobs``: delivered, or given up on."""

    async def keep(self, jobs: list[Job]) -> None:
        """Tell the other processes that this one still holds ``jobs``."""
