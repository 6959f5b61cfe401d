"""A registry quota bucket driven on a fake clock (seconds as numbers): the times it
admits a list of asks at, and the most of those times in any rolling window."""

from __future__ import annotations

from collections import deque

from relais.registry.bucket import TokenBucket


def admit(bucket: TokenBucket, asks: list[float], until: float | None = None) -> list[float]:
    """Asks retried after the wait the bucket names, until admitted; with ``until``, only
    those admitted before it."""
    admitted: list[float] = []
    for ask in sorted(asks):
        now = max(ask, admitted[-1] if admitted else ask)
        while (wait := bucket.take(now)) > 0:
            now += wait
            if until is not None and now >= until:
                return admitted
        if until is not None and now >= until:
            return admitted
        admitted.append(now)
    return admitted


def most_in_window(times: list[float], window: float) -> int:
    """The most ``times`` that fall in one rolling window of ``window`` seconds."""
    seen: deque[float] = deque()
    most = 0
    for t in sorted(times):
        seen.append(t)
        while seen[0] <= t - window:
            seen.popleft()
        most = max(most, len(seen))
    return most
