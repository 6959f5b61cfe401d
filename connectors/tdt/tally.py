"""TdT calls counted, one INFO line at most every second instead of one per call.

Each call logs ``tdt.called`` at DEBUG (at INFO when the TdT answers an HTTP error);
:data:`TALLY` keeps the facts an operator reads at INFO: ``tdt.calls_summary`` with the
calls since the previous line by operation, the HTTP errors, and the mean and longest
elapsed time. A line is written by the call that finds the interval passed, so a quiet
process writes none.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class CallTally:
    """Calls to the TdT since the last summary line (one per process: :data:`TALLY`)."""

    def __init__(self, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._since = clock()
        self._by_operation: Counter[str] = Counter()
        self._errors = 0
        self._elapsed_ms = 0.0
        self._longest_ms = 0.0
        self.calls_since_start = 0

    def add(self, partner: str, operation: str, http_status: int, elapsed_ms: float) -> None:
        """Count one call; write the summary when ``interval`` seconds have passed."""
        self._by_operation[operation] += 1
        self._errors += http_status >= 400
        self._elapsed_ms += elapsed_ms
        self._longest_ms = max(self._longest_ms, elapsed_ms)
        self.calls_since_start += 1
        now = self._clock()
        if now - self._since >= self.interval:
            self.flush(partner, now)

    def flush(self, partner: str, now: float | None = None) -> None:
        """Write the summary of the calls counted so far (none: nothing is written)."""
        now = self._clock() if now is None else now
        calls = sum(self._by_operation.values())
        if calls:
            log.info("tdt.calls_summary", partner=partner, calls=calls,
                     by_operation=dict(self._by_operation), http_errors=self._errors,
                     elapsed_ms_mean=round(self._elapsed_ms / calls, 1),
                     elapsed_ms_max=round(self._longest_ms, 1),
                     seconds=round(now - self._since, 1),
                     calls_since_start=self.calls_since_start)
        self._since = now
        self._by_operation.clear()
        self._errors = 0
        self._elapsed_ms = 0.0
        self._longest_ms = 0.0


TALLY = CallTally()
"""The process's TdT calls (every :class:`~connectors.tdt.s2low.S2lowConnector`)."""
