"""Delay tiers: one topic per fixed delay; retries and status polls wait there.

The forwarding itself (:mod:`relais.stages.delay_forwarder`) and the choice of a tier
(:mod:`relais.stages.delays`) are in the kernel; the topics are declared here.
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
