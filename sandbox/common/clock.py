"""The clock a sandbox runs on: the system clock plus an offset the control can move."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, timezone-aware (UTC)."""
    return datetime.now(UTC)


class AdjustableClock:
    """The system clock plus an offset ``POST /sandbox/clock`` can move forward."""

    def __init__(self, base: Clock = system_clock) -> None:
        self._base = base
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (never backward)."""
        if seconds < 0:
            raise ValueError("a sandbox clock only moves forward")
        self._offset += timedelta(seconds=seconds)
