"""Which bus messages were delivered already, by their sender's sequence numbers.

A process publishes an emit addressed to several groups once on each group's
channel, every copy with the same sequence number, and a process listening
to two of those channels must deliver it once; a batch published again after
a half-failed attempt must not be delivered twice either. On one Redis all
channels arrive over one connection, in the order they were published. On a
Redis Cluster each master's channels arrive over a connection of their own,
so one sender's messages can arrive out of order (seq 8 on one master's
connection before seq 7 on another's): "drop whatever is not above the
highest seen" would then drop seq 7, a message never delivered.
``Delivered`` remembers, per sender, which of the last ``window`` sequence
numbers it saw.
"""

from __future__ import annotations

import collections

__all__ = ["WINDOW", "Delivered"]

#: Sequence numbers remembered per sender, below its highest: a message
#: arriving further behind than this is taken for a copy.
WINDOW = 8192
#: Senders remembered at most (processes come and go).
MAX_SENDERS = 1024


class Delivered:
    """Per sender, the sequence numbers seen among the last ``window``.

    :param window: how far behind the highest a message may arrive and
        still count as new (``WINDOW``).
    :param senders: senders remembered at most, the least recently heard
        forgotten first (``MAX_SENDERS``).
    """

    def __init__(self, window: int = WINDOW, senders: int = MAX_SENDERS) -> None:
        self.window = window
        self.senders = senders
        self._full = (1 << window) - 1
        # sender -> (highest seq seen, bit i set: seq highest - i was seen)
        self._seen: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()

    def first(self, sender: str, seq: int) -> bool:
        """Note message ``seq`` of ``sender``; False if it was seen already."""
        found = self._seen.get(sender)
        if found is None:
            self._seen[sender] = (seq, 1)
            while len(self._seen) > self.senders:
                self._seen.popitem(last=False)
            return True
        self._seen.move_to_end(sender)
        high, bits = found
        if seq > high:
            ahead = seq - high
            # A jump past the window forgets all behind it, without building
            # a shifted number as wide as the jump.
            bits = ((bits << ahead) | 1) & self._full if ahead < self.window else 1
            self._seen[sender] = (seq, bits)
            return True
        behind = high - seq
        if behind >= self.window or bits >> behind & 1:
            return False
        self._seen[sender] = (high, bits | 1 << behind)
        return True
