"""JwksCache: when the provider's keys are fetched, and what is served while it is down."""

from __future__ import annotations

import asyncio

from chat_server.core.jwks import JwksCache, Keys


class Provider:
    """A fake JWKS fetch: returns ``keys``, or raises while ``down``."""

    def __init__(self, keys: Keys | None = None) -> None:
        self.keys: Keys = dict(keys or {"a": "key-a"})
        self.down = False
        self.fetches = 0

    def __call__(self) -> Keys:
        self.fetches += 1
        if self.down:
            raise ConnectionError("provider down")
        return dict(self.keys)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(provider: Provider, clock: Clock) -> JwksCache:
    return JwksCache(provider, min_refresh=60, retry=2, max_age=300, clock=clock)


async def test_a_known_kid_is_served_from_the_cache_without_a_fetch() -> None:
    provider, clock = Provider(), Clock()
    keys = cache(provider, clock)
    await keys.refresh()
    assert await keys.key("a") == "key-a"
    assert provider.fetches == 1


async def test_an_unknown_kid_fetches_at_most_once_a_minute() -> None:
    provider, clock = Provider(), Clock()
    keys = cache(provider, clock)
    await keys.refresh()
    provider.keys["b"] = "key-b"
    clock.now += 59
    assert await keys.key("b") is None
    clock.now += 1
    assert await keys.key("b") == "key-b"
    assert provider.fetches == 2


async def test_a_provider_down_is_tried_again_after_the_retry_interval() -> None:
    provider, clock = Provider(), Clock()
    provider.down = True
    keys = cache(provider, clock)
    assert await keys.refresh() is False
    provider.down = False
    clock.now += 1
    assert await keys.key("a") is None
    clock.now += 1
    assert await keys.key("a") == "key-a"


async def test_cached_keys_are_served_while_the_provider_is_down() -> None:
    provider, clock = Provider(), Clock()
    keys = cache(provider, clock)
    await keys.refresh()
    provider.down = True
    clock.now += 3600
    assert await keys.key("a") == "key-a"
    await asyncio.sleep(0.05)  # the background refresh fails and changes nothing
    assert await keys.key("a") == "key-a"


async def test_keys_older_than_max_age_are_refreshed_in_the_background() -> None:
    provider, clock = Provider(), Clock()
    keys = cache(provider, clock)
    await keys.refresh()
    del provider.keys["a"]
    provider.keys["b"] = "key-b"
    clock.now += 301
    assert await keys.key("a") == "key-a"  # served at once, stale
    await asyncio.sleep(0.05)
    assert keys.kids == frozenset({"b"})


async def test_callers_arriving_during_a_fetch_share_it() -> None:
    provider, clock = Provider(), Clock()
    keys = cache(provider, clock)
    found = await asyncio.gather(*(keys.key("a") for _ in range(20)))
    assert found == ["key-a"] * 20
    assert provider.fetches == 1
