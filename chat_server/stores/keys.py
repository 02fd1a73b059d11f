"""Every Redis key the server uses, named in one place, for one Redis or a cluster.

On one Redis the names are those the stores always used, so a chat upgraded
in place keeps its history, rooms and markers. On a Redis Cluster every key
that a script or a multi-key command touches together carries the same hash
tag (the part in braces, the only part Redis hashes to pick a slot):

- a conversation's keys (history stream, trim marker, states, revs, its id
  counter and the idempotency keys of its sends) carry the conversation
  key, ``{room:<name>}`` or ``{dm:<a>:<b>}``; a room's presence, settings
  and bans carry ``{room:<name>}`` too, as does its pub/sub channel
  (``routing.py``), so the append script publishes in the slot it writes;
- a user's keys (private directory, read markers, ban) carry ``{user:<name>}``;
- keys touched alone (emit idempotency, the webhook stream) need no tag.

Ids must stay unique across conversations. One Redis has one counter for
all of them (``<p>seq``); a cluster cannot, as a script may touch one slot
only. There each slot has a counter, named with a tag that hashes to that
slot, and the sequence part of an id is ``counter * 16384 + slot``: two slots
never produce the same number, and in one slot the counter never repeats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

__all__ = ["PLAIN", "HistoryKeys", "KeyLayout", "SeqKey", "slot_tag"]


@dataclass(frozen=True, slots=True)
class HistoryKeys:
    """The keys of one conversation's history (``stores/scripts.py`` says what each holds)."""

    stream: str
    trimmed: str
    states: str
    revs: str


@dataclass(frozen=True, slots=True)
class SeqKey:
    """The counter a conversation's ids and revs take their sequence part from.

    The part is ``counter * multiplier + offset``: 1 and 0 on one Redis, the
    slot count and the conversation's slot on a cluster.
    """

    key: str
    multiplier: int
    offset: int


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """For each slot, the shortest decimal number that hashes to it (found once)."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing, n = REDIS_CLUSTER_HASH_SLOTS, 0
    while missing:
        slot = key_slot(str(n).encode())
        if tags[slot] is None:
            tags[slot] = str(n)
            missing -= 1
        n += 1
    return tuple(tag for tag in tags if tag is not None)


def slot_tag(slot: int) -> str:
    """A hash tag (without braces) whose keys live in cluster slot ``slot``."""
    return _slot_tags()[slot]


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """The names of the chat's Redis keys.

    :param prefix: put before every key, so several chats can share one
        Redis database (``chat:``).
    :param cluster: name them for a Redis Cluster (hash tags), not one Redis.
    """

    prefix: str = "chat:"
    cluster: bool = False

    def _tagged(self, name: str) -> str:
        return f"{{{name}}}" if self.cluster else name

    # -- conversations ------------------------------------------------------------

    def history(self, conversation: str) -> HistoryKeys:
        """The history keys of ``conversation`` (``room:<name>`` or ``dm:<a>:<b>``)."""
        p, c = self.prefix, self._tagged(conversation)
        return HistoryKeys(f"{p}h:{c}", f"{p}trimmed:{c}", f"{p}states:{c}", f"{p}revs:{c}")

    def once(self, conversation: str, once: str) -> str:
        """Where an idempotent send to ``conversation`` keeps the id it stored."""
        if self.cluster:
            return f"{self.prefix}once:{{{conversation}}}:{once}"
        return f"{self.prefix}once:{once}"

    def seq(self, conversation: str) -> SeqKey:
        """The id counter of ``conversation``'s appends and changes."""
        if not self.cluster:
            return SeqKey(f"{self.prefix}seq", 1, 0)
        slot = key_slot(conversation.encode())
        return SeqKey(f"{self.prefix}seq:{{{slot_tag(slot)}}}", REDIS_CLUSTER_HASH_SLOTS, slot)

    # -- rooms ----------------------------------------------------------------------

    def presence(self, room: str) -> str:
        """The sorted set of ``room``'s present users (``:online`` for the whole chat)."""
        return f"{self.prefix}p:{self._room(room)}"

    def presence_entry(self, room: str, user: str) -> str:
        """The processes that hold ``user`` in ``room``."""
        return f"{self.prefix}pu:{self._room(room)}:{user}"

    def _room(self, room: str) -> str:
        return f"{{room:{room}}}" if self.cluster else room

    def room(self, room: str) -> tuple[str, str, str, str]:
        """Settings, members, moderators and bans of ``room`` (already tagged on one Redis)."""
        base = f"{self.prefix}{{room:{room}}}"
        return f"{base}:s", f"{base}:m", f"{base}:mod", f"{base}:b"

    # -- users ------------------------------------------------------------------------

    def _user(self, user: str) -> str:
        return f"{{user:{user}}}" if self.cluster else user

    def partners(self, user: str) -> str:
        """The sorted set of ``user``'s private conversation partners."""
        return f"{self.prefix}dms:{self._user(user)}"

    def markers(self, user: str) -> str:
        """The hash of ``user``'s read markers."""
        return f"{self.prefix}read:{self._user(user)}"

    def ban(self, user: str) -> str:
        """The server-wide ban of ``user``."""
        return f"{self.prefix}ban:{self._user(user)}"

    # -- alone ------------------------------------------------------------------------

    def idempotency(self, key: str) -> str:
        """A remembered emit answer."""
        return f"{self.prefix}idem:{key}"

    def webhooks(self) -> str:
        """The stream of pending webhook events."""
        return f"{self.prefix}webhooks"


#: The layout of one Redis with the default prefix.
PLAIN = KeyLayout()
