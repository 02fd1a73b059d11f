"""Private conversations on a Redis Cluster: their events put back in order as they arrive.

On one Redis, and for rooms on a cluster, the script that stores a message
also publishes it, so Redis sends one conversation's events in the order it
stored them. A private conversation's two user channels live in other
cluster slots than its keys, so its publications leave from the storing
process right after the script (``stores/history.py``), and two processes'
publications can cross on the way.

Each such publication carries ``order``: the conversation, its event (the
message id, or the new rev of a change) and the conversation's event before
it, as the script saw it. ``Reorder`` delivers an event once the one before
it was delivered here, holding it at most ``window`` seconds otherwise. It
holds nothing when the event before is older than ``window`` (it arrived long
ago, or its publisher died before publishing it): the client then finds that
message in history as it does after any gap.
"""

from __future__ import annotations

import collections
from typing import Any

__all__ = ["WINDOW", "Reorder"]

#: Seconds an event waits at most for the one before it; also how far apart
#: (by their ids' clocks) two events must be for the later one not to wait.
WINDOW = 1.0
#: Conversations whose last delivered event is remembered at most.
MAX_CONVERSATIONS = 10_000


class Reorder:
    """Per private conversation, deliver its events in order (``docs/scaling.md``).

    :param window: seconds an event waits for the one before it at most.
    """

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        #: conversation -> the last event delivered here
        self._last: collections.OrderedDict[str, str] = collections.OrderedDict()
        #: conversation -> {the event before: (deadline, this event, message)}
        self._held: dict[str, dict[str, tuple[float, str, dict[str, Any]]]] = {}

    def offer(self, message: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """The messages ready to deliver now that ``message`` (with ``order``) arrived."""
        order = message.get("order")
        if not (isinstance(order, list) and len(order) == 3):
            return [message]
        key, event, before = order
        if not (isinstance(key, str) and isinstance(event, str)):
            return [message]
        held = self._held.setdefault(key, {})
        if any(e == event for _, e, _ in held.values()):
            return []  # the copy on the other user's channel
        last = self._last.get(key)
        if isinstance(before, str) and before != last and self._may_wait(event, before, last):
            held[before] = (now + self.window, event, message)
            return []
        return self._deliver(key, event, message)

    def _may_wait(self, event: str, before: str, last: str | None) -> bool:
        # Wire ids and revs start with their 15-digit millisecond clock.
        if last is not None and before < last:
            return False  # late: something after its predecessor went out already
        return int(event[:15]) - int(before[:15]) < self.window * 1000

    def _deliver(self, key: str, event: str, message: dict[str, Any]) -> list[dict[str, Any]]:
        ready = [message]
        held = self._held.get(key, {})
        self._remember(key, event)
        while event in held:
            _, event, follower = held.pop(event)
            ready.append(follower)
            self._remember(key, event)
        if not held:
            self._held.pop(key, None)
        return ready

    def _remember(self, key: str, event: str) -> None:
        if self._last.get(key, "") < event:
            self._last[key] = event
        self._last.move_to_end(key)
        while len(self._last) > MAX_CONVERSATIONS:
            self._last.popitem(last=False)

    def due(self, now: float) -> list[dict[str, Any]]:
        """Held messages whose wait is over, each conversation's in order."""
        ready: list[dict[str, Any]] = []
        for key in [k for k, held in self._held.items() if _earliest(held) <= now]:
            held = self._held.pop(key)
            for _, event, message in sorted(held.values(), key=lambda h: h[1]):
                ready.append(message)
                self._remember(key, event)
        return ready

    def next_deadline(self) -> float | None:
        """When the first held message's wait ends; None when nothing is held."""
        return min((_earliest(held) for held in self._held.values()), default=None)

    def clear(self) -> None:
        """Forget everything (the subscription was lost: the gap filler takes over)."""
        self._last.clear()
        self._held.clear()


def _earliest(held: dict[str, tuple[float, str, dict[str, Any]]]) -> float:
    return min(deadline for deadline, _, _ in held.values())
