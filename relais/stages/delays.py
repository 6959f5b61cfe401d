"""Delay tiers: topics whose records are forwarded to their target after a fixed delay.

Retries and status polls both wait in these tiers. Within one tier every record
waits the same time, so due times rise with offsets and a partition never has to
look past its head: a tier's forwarder only ever sleeps until the first record
of each partition is due.
"""

from __future__ import annotations

from topics.delays import TIERS, DelayTier

__all__ = ["TIERS", "DelayTier", "tier", "tier_for"]


_BY_LABEL = {tier.label: tier for tier in TIERS}


def tier(label: str) -> DelayTier:
    return _BY_LABEL[label]


def tier_for(seconds: float) -> DelayTier:
    """The shortest tier that waits at least ``seconds`` (the longest tier past it)."""
    for candidate in TIERS:
        if candidate.seconds >= seconds:
            return candidate
    return TIERS[-1]
