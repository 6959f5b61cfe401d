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
only make calls rarer, never more frequent, so the bound holds across owners. What the
last owner published (:class:`BucketState`) travels as a small JSON object
(:func:`state_to_json`, :func:`state_from_json`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

EPSILON = 1e-9  # float refills land a hair under a whole token
MIN_WAIT = 1e-3  # never ask a caller to wait less than a millisecond


MAX_STATE_BYTES = 1024  # a published state is a few dozen bytes; refuse anything larger


@dataclass(frozen=True)
class BucketState:
    """What a bucket owner publishes so the next owner starts where it stopped: the end
    of the registry's last ``Retry-After`` block, and the time of its last call (a new
    owner whose clock lags the old one's still waits a full token after that call)."""

    blocked_until: float
    last_call: float = 0.0


def state_to_json(state: BucketState) -> bytes:
    return json.dumps({"blocked_until": state.blocked_until,
                       "last_call": state.last_call}).encode("utf-8")


def state_from_json(raw: bytes) -> BucketState:
    """The state a ``relais.registry.quota`` record holds (ValueError when it is not one)."""
    if len(raw) > MAX_STATE_BYTES:
        raise ValueError(f"a bucket state is at most {MAX_STATE_BYTES} bytes")
    try:
        data = json.loads(raw)
        blocked, last = float(data["blocked_until"]), float(data.get("last_call", 0.0))
    except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a bucket state: {exc}") from exc
    if not (math.isfinite(blocked) and math.isfinite(last)):
        raise ValueError("a bucket state's times are finite numbers")
    return BucketState(blocked, last)


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
        self.last_call = 0.0

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
        """The bucket of a new owner: empty, and blocked as long as the last owner said.

        Empty from ``now`` on (or from the last owner's last call, if its clock was ahead):
        whatever the last owner's bucket still held, the two owners' calls together are
        then calls one bucket could have let through, so the window bound holds."""
        blocked = max(state.blocked_until, state.last_call) if state is not None else 0.0
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
            self.last_call = max(self.last_call, now)
            return 0.0
        return max((1.0 - self.tokens) / self.rate, MIN_WAIT)

    def penalize(self, retry_after: float, now: float) -> None:
        """The registry answered 429: no call before ``now + retry_after``, and no burst after."""
        self._refill(now)
        self.tokens = 0.0
        self.blocked_until = max(self.blocked_until, now + max(retry_after, 0.0))

    def state(self) -> BucketState:
        return BucketState(self.blocked_until, self.last_call)

    def observe(self, state: BucketState) -> None:
        """A block another owner published (e.g. just before this one took over): honour
        it too. Only ever makes calls rarer."""
        self.blocked_until = max(self.blocked_until, state.blocked_until)

    def max_in_window(self, window: float) -> int:
        """The most calls this bucket can let through in any ``window`` seconds."""
        return math.floor(self.capacity + self.rate * window)
