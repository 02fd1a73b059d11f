"""An identity provider's signing keys (JWKS): fetched in a thread, cached, served stale."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import jwt

from chat_server.core.ratelimit import Clock

__all__ = ["FETCH_TIMEOUT", "MAX_AGE", "MIN_REFRESH", "RETRY", "JwksCache"]

log = logging.getLogger(__name__)

#: Seconds one fetch may take: a slow provider must not hold handshakes up long.
FETCH_TIMEOUT = 3.0
#: Seconds between two fetches prompted by tokens naming an unknown ``kid``:
#: anyone can make up a ``kid``, and must not make us hammer the provider.
MIN_REFRESH = 60.0
#: Seconds between two attempts while the provider fails (or never answered).
RETRY = 2.0
#: Seconds after which known keys are refreshed in the background, so that a
#: key the provider withdrew stops working.
MAX_AGE = 300.0

Keys = dict[str, Any]
Fetch = Callable[[], Keys]


def fetch_signing_keys(url: str, timeout: float = FETCH_TIMEOUT) -> Fetch:
    """A blocking function returning ``{kid: key}`` of the signing keys at ``url``.

    PyJWKClient does the HTTP (urllib) and the parsing; its own caches are
    off because ``JwksCache`` decides when to fetch.
    """
    client = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=False, timeout=timeout)

    def fetch() -> Keys:
        return {k.key_id: k.key for k in client.get_signing_keys(refresh=True) if k.key_id}

    return fetch


class JwksCache:
    """The keys of a JWKS, by ``kid``.

    :param fetch: blocking function returning ``{kid: key}``; run in a thread,
        so that a slow provider never blocks the event loop.
    :param min_refresh: seconds between fetches prompted by an unknown ``kid`` (60).
    :param retry: seconds between attempts while fetching fails (2).
    :param max_age: seconds after which known keys are refreshed in the
        background; until then, and while the provider is down, they are
        used as they are (300).
    :param clock: monotonic clock, injectable for tests.

    Only one fetch runs at a time; callers arriving meanwhile wait for it.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        min_refresh: float | None = None,
        retry: float | None = None,
        max_age: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._fetch = fetch
        # Read at construction, not import, so a test may shorten them.
        self.min_refresh = MIN_REFRESH if min_refresh is None else min_refresh
        self.retry = RETRY if retry is None else retry
        self.max_age = MAX_AGE if max_age is None else max_age
        self._clock = clock
        self._keys: Keys = {}
        self._fetched_at: float | None = None
        self._next_attempt = float("-inf")
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[bool] | None = None

    @property
    def kids(self) -> frozenset[str]:
        """The key ids known right now."""
        return frozenset(self._keys)

    async def key(self, kid: str) -> Any | None:
        """The key named ``kid``, fetching the set again if allowed; ``None`` if unknown."""
        if kid in self._keys:
            self._refresh_if_old()
            return self._keys[kid]
        if self._clock() >= self._next_attempt:
            await self.refresh()
        return self._keys.get(kid)

    async def refresh(self) -> bool:
        """Fetch the set now (unless a fetch just ran); whether keys are known after it."""
        async with self._lock:
            if self._clock() < self._next_attempt:
                return bool(self._keys)  # someone else fetched while we waited
            try:
                keys = await asyncio.to_thread(self._fetch)
            except Exception as exc:  # the provider's failures are never ours to raise
                self._next_attempt = self._clock() + self.retry
                if self._keys:
                    log.warning("JWKS fetch failed (%s); keeping the cached keys", exc)
                else:
                    log.warning("JWKS fetch failed (%s); tokens are refused until it works", exc)
                return bool(self._keys)
            now = self._clock()
            self._keys, self._fetched_at = keys, now
            self._next_attempt = now + self.min_refresh
            return True

    def _refresh_if_old(self) -> None:
        old = self._fetched_at is not None and self._clock() - self._fetched_at > self.max_age
        due = self._clock() >= self._next_attempt
        if old and due and (self._background is None or self._background.done()):
            self._background = asyncio.get_running_loop().create_task(self.refresh())

    async def aclose(self) -> None:
        """Stop a background refresh (its thread finishes on its own, bounded by the timeout)."""
        task, self._background = self._background, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
