"""The registry quota bucket and circuit breaker, on a fake clock (seconds as numbers)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relais.registry.breaker import BreakerState, CircuitBreaker
from relais.registry.bucket import BucketState, TokenBucket
from relais.registry.singleflight import SingleFlight
from tests.unit.quota_clock import admit, most_in_window


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), min_size=1, max_size=300),
    st.integers(min_value=2, max_value=60),
)
def test_a_quota_bucket_never_exceeds_the_rolling_window(asks: list[float], limit: int) -> None:
    bucket = TokenBucket.for_quota(limit, 60.0, 0.0, margin=0.0)
    times = admit(bucket, asks)
    assert len(times) == len(asks)
    assert most_in_window(times, 60.0) <= limit


def test_sirene_burst_of_two_thousand_goes_through_at_thirty_a_minute() -> None:
    bucket = TokenBucket.for_quota(30, 60.0, 0.0)
    times = admit(bucket, [0.0] * 2000)
    assert most_in_window(times, 60.0) <= 30
    assert bucket.max_in_window(60.0) <= 30
    # the bucket is not needlessly slow: 2,000 calls in little more than 2,000/30 minutes
    assert times[-1] / 60 < 2000 / 30 * 1.12


def test_a_429_blocks_until_retry_after_and_a_new_owner_starts_empty() -> None:
    bucket = TokenBucket.for_quota(30, 60.0, 0.0)
    assert bucket.take(0.0) == 0.0
    bucket.penalize(17.0, 1.0)
    assert bucket.take(5.0) == pytest.approx(13.0)
    assert bucket.take(18.0) > 0  # emptied by the 429: the refill starts at 18
    state = bucket.state()
    assert state == BucketState(18.0)
    heir = TokenBucket.taken_over(bucket, state, 10.0)
    assert heir.take(10.0) == pytest.approx(8.0)
    assert heir.take(18.0) == pytest.approx(1 / heir.rate)
    fresh = TokenBucket.taken_over(bucket, None, 100.0)
    assert fresh.take(100.0) > 0 and fresh.take(100.0 + 1 / fresh.rate) == 0.0


def test_bucket_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        TokenBucket.for_quota(1, 60.0, 0.0)
    with pytest.raises(ValueError):
        TokenBucket(0.5, 1.0, 0.0)


def test_breaker_opens_after_failures_and_probes_once() -> None:
    breaker = CircuitBreaker(threshold=3, open_seconds=10.0, max_open_seconds=25.0)
    for t in (0.0, 1.0):
        assert breaker.allow(t) == 0.0
        breaker.failure(t)
    assert breaker.state(2.0) is BreakerState.CLOSED
    breaker.failure(2.0)
    assert breaker.state(3.0) is BreakerState.OPEN
    assert breaker.allow(3.0) == pytest.approx(9.0)
    assert breaker.state(12.0) is BreakerState.HALF_OPEN
    assert breaker.allow(12.0) == 0.0  # the probe
    assert breaker.allow(12.5) > 0  # only one probe at a time
    breaker.failure(13.0)  # the probe failed: open twice as long
    assert breaker.allow(14.0) == pytest.approx(19.0)
    assert breaker.allow(33.0) == 0.0
    breaker.failure(33.0)
    assert breaker.allow(34.0) == pytest.approx(24.0)  # capped at 25 s
    assert breaker.allow(58.0) == 0.0
    breaker.success()
    assert breaker.state(58.0) is BreakerState.CLOSED
    breaker.failure(59.0)
    assert breaker.state(59.0) is BreakerState.CLOSED  # the count started again


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(threshold=2)
    breaker.failure(0.0)
    breaker.success()
    breaker.failure(1.0)
    assert breaker.state(1.0) is BreakerState.CLOSED


async def test_single_flight_shares_one_call() -> None:
    flight: SingleFlight[str] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def call() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "answer"

    tasks = [asyncio.create_task(flight.run("sirene:212102313", call)) for _ in range(5)]
    await asyncio.sleep(0)
    assert flight.in_flight() == 1
    gate.set()
    assert await asyncio.gather(*tasks) == ["answer"] * 5
    assert calls == 1 and flight.in_flight() == 0

    async def boom() -> str:
        raise RuntimeError("registry down")

    with pytest.raises(RuntimeError):
        await flight.run("sirene:1", boom)
    assert await flight.run("sirene:1", call) == "answer" and calls == 2
