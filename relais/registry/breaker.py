"""A circuit breaker per registry: stop calling a registry that keeps failing.

closed ──(``threshold`` retriable failures in a row)──▶ open ──(``open_seconds``)──▶
half-open ──(one probe succeeds)──▶ closed; a failed probe opens it again, for twice as
long (up to ``max_open_seconds``). Only *retriable* failures count (5xx, timeouts, network):
a "not found" or a refused key says nothing about the registry's health. A 429 is the
quota's business (:mod:`relais.registry.bucket`), not the breaker's.
"""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, *, threshold: int = 5, open_seconds: float = 30.0, max_open_seconds: float = 600.0
    ) -> None:
        if threshold < 1 or open_seconds <= 0 or max_open_seconds < open_seconds:
            raise ValueError("breaker: threshold >= 1, 0 < open_seconds <= max_open_seconds")
        self.threshold = threshold
        self.base_open = open_seconds
        self.max_open = max_open_seconds
        self.failures = 0
        self.open_for = open_seconds
        self.opened_at: float | None = None
        self.probing = False

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now < self.opened_at + self.open_for:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allow(self, now: float) -> float:
        """``0.0`` when a call may go now, else the seconds before the breaker lets one try."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return 0.0
        if state is BreakerState.OPEN:
            assert self.opened_at is not None
            return self.opened_at + self.open_for - now
        if self.probing:  # one probe at a time
            return 1.0
        self.probing = True
        return 0.0

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.open_for = self.base_open
        self.probing = False

    def failure(self, now: float) -> None:
        """A retriable failure of a call this breaker allowed."""
        if self.probing:
            self.probing = False
            self.open_for = min(self.open_for * 2, self.max_open)
            self.opened_at = now
            return
        self.failures += 1
        if self.failures >= self.threshold and self.opened_at is None:
            self.opened_at = now
