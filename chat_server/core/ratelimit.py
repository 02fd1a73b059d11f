"""Rate limits: token buckets per connection and per API key, and flood detection."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "Clock",
    "ConnectionLimiter",
    "Decision",
    "KeyedLimiter",
    "TokenBucket",
    "retry_after_header",
]

Clock = Callable[[], float]
K = TypeVar("K", bound=Hashable)


class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate`` tokens per second.

    :param burst: tokens the bucket holds when full (what may be spent at once).
    :param rate: tokens added per second, up to ``burst``.
    :param clock: a monotonic clock in seconds; ``time.monotonic`` unless a test
        wants to drive time by hand.

    The bucket starts full. Only two floats are kept per bucket, so one per
    connection costs next to nothing.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, burst: float, rate: float, clock: Clock = time.monotonic) -> None:
        if burst <= 0 or rate <= 0 or not math.isfinite(burst) or not math.isfinite(rate):
            raise ValueError(f"burst and rate must be positive, got {burst!r}, {rate!r}")
        self.burst = float(burst)
        self.rate = float(rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        # max() guards against a clock that steps back (a test clock, say).
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        return now

    @property
    def tokens(self) -> float:
        """Tokens available right now."""
        self._refill()
        return self._tokens

    @property
    def full(self) -> bool:
        """Whether the bucket has refilled completely (its owner is idle)."""
        return self.tokens >= self.burst

    def take(self, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens if there are enough.

        Returns ``0.0`` when the tokens were spent, otherwise the seconds to
        wait until they will be there (nothing is spent then).
        """
        self._refill()
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        return (cost - self._tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one client event."""

    #: The event may be handled.
    allowed: bool
    #: Seconds until the next event would be allowed; 0 when allowed.
    retry_after: float = 0.0
    #: The connection has flooded past its allowance of refusals: drop it.
    disconnect: bool = False


ALLOW = Decision(allowed=True)


class ConnectionLimiter:
    """The rate limit of one Socket.IO connection.

    :param burst: events the connection may send at once.
    :param rate: events per second it may keep sending.
    :param flood_factor: refused events allowed per ``burst`` within
        ``flood_window`` before the connection counts as flooding (3).
    :param flood_window: seconds over which refusals are counted (10).
    :param clock: monotonic clock, injectable for tests.

    Every event counts, known or not: a client probing with unknown event
    names spends the same tokens as one sending messages.
    """

    __slots__ = ("_bucket", "_clock", "_flood_limit", "_flood_window", "_refusals")

    def __init__(
        self,
        burst: int,
        rate: float,
        *,
        flood_factor: int = 3,
        flood_window: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._bucket = TokenBucket(burst, rate, clock)
        self._clock = clock
        self._flood_limit = flood_factor * burst
        self._flood_window = flood_window
        # Made at the first refusal: most connections never have one, and an
        # empty deque is about 700 bytes for each of them. It holds at most
        # flood_limit + 1 stamps, so a flood costs bounded memory.
        self._refusals: deque[float] | None = None

    def check(self) -> Decision:
        """Account for one incoming event and say what to do with it."""
        wait = self._bucket.take()
        if wait == 0.0:
            return ALLOW
        now = self._clock()
        refusals = self._refusals
        if refusals is None:
            refusals = self._refusals = deque(maxlen=self._flood_limit + 1)
        refusals.append(now)
        while refusals and now - refusals[0] > self._flood_window:
            refusals.popleft()
        flooding = len(refusals) > self._flood_limit
        return Decision(allowed=False, retry_after=_round_up(wait), disconnect=flooding)


class KeyedLimiter(Generic[K]):
    """Token buckets by key (an API key, say), with bounded bookkeeping.

    :param burst: tokens per key's bucket.
    :param rate: tokens per second per key.
    :param max_keys: buckets kept at most; beyond it the least recently used
        is forgotten, which can only ever be generous to that key.
    :param clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        burst: float,
        rate: float,
        *,
        max_keys: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        # Validate once here rather than on the first request.
        TokenBucket(burst, rate, clock)
        self.burst = burst
        self.rate = rate
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[K, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: K) -> float:
        """Spend one of ``key``'s tokens: ``0.0`` if allowed, else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.burst, self.rate, self._clock)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take()
        return _round_up(wait) if wait else 0.0


def _round_up(seconds: float) -> float:
    """Seconds rounded up to the millisecond, never shown as 0 when positive."""
    # The epsilon keeps float noise (0.2000000001) from adding a millisecond.
    return max(0.001, math.ceil(seconds * 1000 - 1e-6) / 1000)


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds (RFC 9110), at least 1."""
    return str(max(1, math.ceil(seconds)))
