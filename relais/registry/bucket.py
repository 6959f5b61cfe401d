"""A token bucket sized so that a registry's rolling-window quota is never exceeded.

A bucket of capacity ``B`` refilled at ``r`` tokens per second lets through at most
``B + r·W`` calls in any window of ``W`` seconds. For a quota of ``limit`` calls per
``window`` seconds, :meth:`TokenBucket.for_quota` picks ``B`` (1 by default: no burst, so
the sustained rate is as close to the quota as the bound allows; Sirene's 30/min gives
29 calls per 62 s) and ``r = (limit − B) / (window + margin)``, so ``B + r·window < limit``:
the registry, which counts per rolling window, never sees more than ``limit``. ``margin``
absorbs requests that reach the registry later than they left (a slow first request and a
fast second one arrive closer together than they were sent).

A 429 from the registry (:meth:`TokenBucket.penalize`) empties the bucket and blocks it
until ``Retry-After`` has passed. A new owner of the bucket (after a crash or a rebalance)
starts with :meth:`TokenBucket.taken_over`: no tokens and the last known block, which can
only make calls rarer, never more frequent, so the bound holds across owners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPSILON = 1e-9  # float refills land a hair under a whole token
MIN_WAIT = 1e-3  # never ask a caller to wait less than a millisecond


@dataclass(frozen=True)
class BucketState:
    """What a bucket owner publishes so the next owner starts where it stopped."""

    blocked_until: float


class TokenBucket:
    def __init__(
        self,
        capacity: float,
        rate: float,
        now: float,
        *,
        tokens: float | None = None,
        blocked_until: float = 0.0,
    ) -> None:
        if capacity < 1 or rate <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and rate > 0")
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity if tokens is None else min(tokens, capacity)
        self.updated = now
        self.blocked_until = blocked_until

    @classmethod
    def for_quota(
        cls, limit: int, window: float, now: float, *, margin: float = 2.0, burst: int | None = None
    ) -> TokenBucket:
        """A bucket that never lets more than ``limit`` calls through in ``window`` seconds."""
        if limit < 2 or window <= 0 or margin < 0:
            raise ValueError("a quota bucket needs limit >= 2, window > 0, margin >= 0")
        capacity = burst if burst is not None else 1
        capacity = max(1, min(capacity, limit - 1))
        return cls(float(capacity), (limit - capacity) / (window + margin), now)

    @classmethod
    def taken_over(
        cls, template: TokenBucket, state: BucketState | None, now: float
    ) -> TokenBucket:
        """The bucket of a new owner: empty, and blocked as long as the last owner said."""
        blocked = state.blocked_until if state is not None else 0.0
        return cls(template.capacity, template.rate, now, tokens=0.0, blocked_until=blocked)

    def _refill(self, now: float) -> None:
        start = max(self.updated, self.blocked_until)
        if now > start:
            self.tokens = min(self.capacity, self.tokens + (now - start) * self.rate)
        self.updated = max(self.updated, now)

    def take(self, now: float) -> float:
        """Take one token: ``0.0`` when taken, else the seconds to wait before asking again."""
        if now < self.blocked_until:
            return self.blocked_until - now
        self._refill(now)
        if self.tokens >= 1.0 - EPSILON:
            self.tokens = max(self.tokens - 1.0, 0.0)
            return 0.0
        return max((1.0 - self.tokens) / self.rate, MIN_WAIT)

    def penalize(self, retry_after: float, now: float) -> None:
        """The registry answered 429: no call before ``now + retry_after``, and no burst after."""
        self._refill(now)
        self.tokens = 0.0
        self.blocked_until = max(self.blocked_until, now + max(retry_after, 0.0))

    def state(self) -> BucketState:
        return BucketState(self.blocked_until)

    def max_in_window(self, window: float) -> int:
        """The most calls this bucket can let through in any ``window`` seconds."""
        return math.floor(self.capacity + self.rate * window)
