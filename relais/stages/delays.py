"""Delay tiers: topics whose records are forwarded to their target after a fixed delay.

Retries and status polls both wait in these tiers. Within one tier every record
waits the same time, so due times rise with offsets and a partition never has to
look past its head: a tier's forwarder only ever sleeps until the first record
of each partition is due.
"""

from __future__ import annotations

from dataclasses import dataclass

from topics.spec import DAY_MS, TopicSpec


@dataclass(frozen=True)
class DelayTier:
    label: str
    seconds: float

    @property
    def topic(self) -> TopicSpec:
        return TopicSpec(
            name=f"relais.delay.{self.label}",
            partitions=3,
            key="the delayed record's own key",
            value_schema="raw",
            doc=f"Records waiting {self.label} before going back to the topic named in "
            "their relais_delay_target header.",
            retention_ms=7 * DAY_MS,
            max_message_bytes=2 * 1024 * 1024,
        )


TIERS: tuple[DelayTier, ...] = (
    DelayTier("5s", 5),
    DelayTier("30s", 30),
    DelayTier("2m", 120),
    DelayTier("5m", 300),
    DelayTier("10m", 600),
    DelayTier("1h", 3600),
)
_BY_LABEL = {tier.label: tier for tier in TIERS}


def tier(label: str) -> DelayTier:
    return _BY_LABEL[label]


def tier_for(seconds: float) -> DelayTier:
    """The shortest tier that waits at least ``seconds`` (the longest tier past it)."""
    for candidate in TIERS:
        if candidate.seconds >= seconds:
            return candidate
    return TIERS[-1]
