"""A rolling-window request quota per API key, as the registries enforce theirs.

INSEE Sirene: 30 requests per minute per subscription key (the window and the count are
knobs so a test can run a scaled-down window). A call over the quota is refused with 429 and
a ``Retry-After`` of the seconds until the oldest counted call leaves the window. Refused
calls are not counted (they did not reach the registry's data).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class QuotaRule:
    limit: int  # calls per window; 0: no quota
    window_seconds: float = 60.0


class RollingQuota:
    """Admitted calls per key over the last ``window_seconds`` (timestamps in seconds)."""

    def __init__(self, rule: QuotaRule) -> None:
        self.rule = rule
        self._calls: dict[str, deque[float]] = {}
        self.max_in_window = 0
        self.refused = 0

    def _trim(self, key: str, now: float) -> deque[float]:
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - self.rule.window_seconds:
            calls.popleft()
        return calls

    def admit(self, key: str, now: float) -> float | None:
        """``None`` when the call is admitted (and counted), else the seconds to wait."""
        calls = self._trim(key, now)
        if self.rule.limit > 0 and len(calls) >= self.rule.limit:
            self.refused += 1
            return max(calls[0] + self.rule.window_seconds - now, 0.0)
        calls.append(now)
        self.max_in_window = max(self.max_in_window, len(calls))
        return None

    def in_window(self, now: float) -> int:
        """Calls admitted over the last window, all keys together."""
        return sum(len(self._trim(key, now)) for key in list(self._calls))

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
