"""Liveness of each stage: consumer lag and the age of the oldest record waiting.

A stage is *stuck* when records wait and the oldest has waited longer than the
threshold. Delay tiers are judged on their due time, not their age: a record in
the one-hour tier is expected to wait an hour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ops.dlq import DeadLetterFilter, read_dead_letters
from relais.kafka import clients as kafka_clients
from relais.stages.delays import TIERS
from topics.catalogue import (
    ACTS_DELIVERY,
    ACTS_FOLLOWUPS,
    ACTS_STATUS,
    ACTS_SUBMITTED,
)
from topics.member import SUBMISSIONS_PATTERN


@dataclass(frozen=True)
class StageHealth:
    stage: str
    group: str
    lag: int
    oldest_age: float | None  # seconds past due of the oldest waiting record
    dead_letters: int

    def stuck(self, max_age: float) -> bool:
        return self.lag > 0 and self.oldest_age is not None and self.oldest_age > max_age


async def _group_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def stage_health(bootstrap: str, app_id: str) -> list[StageHealth]:
    """The health of every stage of the hub whose consumer groups start with ``app_id``."""
    import re

    admin = kafka_clients.admin(bootstrap_servers=bootstrap)
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        topics = await admin.list_topics()
        submissions = sorted(t for t in topics if re.match(SUBMISSIONS_PATTERN, t))
        inputs: dict[str, tuple[list[str], float]] = {
            "ingress": (submissions, 0.0),
            "acts-validation": ([ACTS_SUBMITTED.name], 0.0),
            "acts-delivery": ([ACTS_DELIVERY.name], 0.0),
            "acts-status": ([ACTS_STATUS.name], 0.0),
            "acts-followup": ([ACTS_FOLLOWUPS.name], 0.0),
            **{f"delay-{t.label}": ([t.topic.name], t.seconds) for t in TIERS},
        }
        dead_letters: dict[str, int] = {}
        async for letter in read_dead_letters(bootstrap, DeadLetterFilter()):
            dead_letters[letter.stage] = dead_letters.get(letter.stage, 0) + 1
        results = []
        for stage, (stage_topics, delay) in inputs.items():
            group = f"{app_id}-{stage}"
            committed = await _group_offsets(admin, group)
            partitions: list[TopicPartition] = []
            for topic in stage_topics:
                found = await consumer._client._wait_on_metadata(topic)
                partitions += [TopicPartition(topic, p) for p in sorted(found)]
            end = await consumer.end_offsets(partitions) if partitions else {}
            lag, oldest = 0, None
            waiting = [tp for tp in partitions if end[tp] > committed.get(tp, 0)]
            if waiting:
                # A transaction's commit marker takes an offset too: only records count.
                consumer.assign(waiting)
                for tp in waiting:
                    consumer.seek(tp, committed.get(tp, 0))
                batches = await consumer.getmany(timeout_ms=2000, max_records=len(waiting) * 10)
                now = time.time()
                heads = []
                for tp, records in batches.items():
                    if records:
                        lag += end[tp] - records[0].offset
                        heads.append(records[0].timestamp / 1000)
                if heads:
                    oldest = max(0.0, now - (min(heads) + delay))
            dead = dead_letters.get(stage, 0)
            results.append(StageHealth(stage, group, lag, oldest, dead))
        return results
    finally:
        await consumer.stop()
        await admin.close()
