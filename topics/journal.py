"""The delivery journal's topic: one compacted table shared by every flow family.

Each flow that delivers to a partner declares it among its topics (the hub's catalogue
declares a topic once, whichever flows name it)."""

from __future__ import annotations

from topics.catalogue import HUB_PARTITIONS
from topics.spec import TopicSpec

DELIVERY_JOURNAL = TopicSpec(
    name="relais.journal.deliveries",
    partitions=HUB_PARTITIONS,
    key="flow id/partner",
    value_schema="JournalEntry",
    doc="The delivery journal of every flow that sends to a partner: the intent (POSTING) "
    "before the call, the outcome (POSTED, UNCERTAIN, REFUSED) after.",
    cleanup_policy="compact",
)
