"""Unit tests of the token buckets and flood detection, on a hand-driven clock."""

from __future__ import annotations

import pytest

from chat_server.core.ratelimit import (
    ConnectionLimiter,
    KeyedLimiter,
    TokenBucket,
    retry_after_header,
)


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_bucket_allows_a_full_burst_at_once(clock: FakeClock) -> None:
    bucket = TokenBucket(20, 5, clock)
    assert [bucket.take() for _ in range(20)] == [0.0] * 20


def test_bucket_refuses_past_the_burst_with_the_wait_until_the_next_token(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(20, 5, clock)
    for _ in range(20):
        bucket.take()
    assert bucket.take() == pytest.approx(0.2)


def test_bucket_refusal_spends_nothing(clock: FakeClock) -> None:
    bucket = TokenBucket(1, 1, clock)
    bucket.take()
    bucket.take()
    bucket.take()
    clock.advance(1.0)
    assert bucket.take() == 0.0


def test_bucket_refills_at_its_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(20, 5, clock)
    for _ in range(20):
        bucket.take()
    clock.advance(1.0)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() > 0


def test_bucket_never_holds_more_than_its_burst(clock: FakeClock) -> None:
    bucket = TokenBucket(3, 100, clock)
    clock.advance(3600)
    assert bucket.tokens == 3
    assert bucket.full


def test_bucket_survives_a_clock_that_steps_back(clock: FakeClock) -> None:
    bucket = TokenBucket(2, 1, clock)
    bucket.take()
    clock.advance(-50)
    assert bucket.tokens == pytest.approx(1)


@pytest.mark.parametrize(("burst", "rate"), [(0, 1), (1, 0), (-1, 1), (1, float("inf"))])
def test_bucket_refuses_a_non_positive_or_infinite_setting(burst: float, rate: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(burst, rate)


def test_connection_limiter_allows_the_burst_then_refuses_with_retry_after(
    clock: FakeClock,
) -> None:
    limiter = ConnectionLimiter(20, 5, clock=clock)
    assert all(limiter.check().allowed for _ in range(20))
    decision = limiter.check()
    assert not decision.allowed
    assert decision.retry_after == 0.2
    assert not decision.disconnect


def test_connection_limiter_disconnects_past_three_bursts_of_refusals_in_ten_seconds(
    clock: FakeClock,
) -> None:
    limiter = ConnectionLimiter(20, 5, clock=clock)
    for _ in range(20):
        limiter.check()
    refusals = [limiter.check() for _ in range(60)]
    assert not any(d.disconnect for d in refusals)
    assert limiter.check().disconnect


def test_connection_limiter_forgets_refusals_older_than_ten_seconds(clock: FakeClock) -> None:
    limiter = ConnectionLimiter(2, 0.01, clock=clock)
    for _ in range(2):
        limiter.check()
    for _ in range(6):
        assert not limiter.check().disconnect
    clock.advance(10.5)
    for _ in range(6):
        assert not limiter.check().disconnect


def test_connection_limiter_keeps_a_bounded_record_of_refusals(clock: FakeClock) -> None:
    limiter = ConnectionLimiter(2, 0.01, clock=clock)
    for _ in range(10_000):
        limiter.check()
    assert limiter._refusals is not None
    assert len(limiter._refusals) <= 7


def test_connection_limiter_keeps_no_record_until_it_refuses(clock: FakeClock) -> None:
    limiter = ConnectionLimiter(2, 0.01, clock=clock)
    limiter.check()
    limiter.check()
    assert limiter._refusals is None


def test_retry_after_is_rounded_up_to_the_millisecond(clock: FakeClock) -> None:
    limiter = ConnectionLimiter(1, 3, clock=clock)
    limiter.check()
    assert limiter.check().retry_after == 0.334


def test_keyed_limiter_keeps_a_bucket_per_key(clock: FakeClock) -> None:
    limiter: KeyedLimiter[str] = KeyedLimiter(2, 1, clock=clock)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 1.0
    assert limiter.take("b") == 0.0


def test_keyed_limiter_forgets_the_least_recently_used_key_past_its_bound(
    clock: FakeClock,
) -> None:
    limiter: KeyedLimiter[int] = KeyedLimiter(1, 1, max_keys=3, clock=clock)
    for key in range(10):
        limiter.take(key)
    assert len(limiter) == 3


def test_keyed_limiter_refills_over_time(clock: FakeClock) -> None:
    limiter: KeyedLimiter[str] = KeyedLimiter(50, 50, clock=clock)
    for _ in range(50):
        limiter.take("k")
    assert limiter.take("k") == 0.02
    clock.advance(0.025)
    assert limiter.take("k") == 0.0


@pytest.mark.parametrize(("seconds", "header"), [(0.001, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_header_is_whole_seconds_and_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
