"""Liveness of each stage: consumer lag, the age of the oldest record waiting, and the
dead letters nobody has dealt with yet.

A stage is *stuck* when records wait and the oldest has waited longer than the
threshold. Delay tiers are judged on their due time, not their age: a record in
the one-hour tier is expected to wait an hour.

A stage *holds open dead letters* when its dead-letter topic has records written
within the dead-letter window (``relais health --dead-letter-window``, default 24 h)
that were not replayed (``relais replay`` audits each replay; a replayed letter
is dealt with). Either makes the hub unhealthy. A dead letter older than the window
no longer counts: by then it has been seen, or the window is too long for the
operators' rota. Every dead letter still shows in the ``dead letters`` count.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from ops.audit import read_audit
from ops.dlq import DeadLetterFilter, hub_stages, read_dead_letters
from relais.flows.kit import Flow
from relais.kafka import clients as kafka_clients
from relais.stages.delays import TIERS
from topics.catalogue import INGRESS_STAGE
from topics.member import SUBMISSIONS_PATTERN

#: Dead letters younger than this (seconds) and not replayed make their stage unhealthy.
DEFAULT_DEAD_LETTER_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class StageHealth:
    stage: str
    group: str
    lag: int
    oldest_age: float | None  # seconds past due of the oldest waiting record
    dead_letters: int
    #: dead letters within the window and not replayed
    open_dead_letters: int = 0
    #: seconds since the newest open dead letter was written
    newest_open_age: float | None = None

    def stuck(self, max_age: float) -> bool:
        return self.lag > 0 and self.oldest_age is not None and self.oldest_age > max_age

    def problems(self, max_age: float) -> list[str]:
        """Why this stage is unhealthy, one phrase per reason; empty when it is healthy."""
        found = []
        if self.stuck(max_age):
            found.append(f"{self.lag} waiting, oldest {self.oldest_age or 0:.0f} s overdue")
        if self.open_dead_letters:
            age = self.newest_open_age or 0.0
            found.append(f"{self.open_dead_letters} open dead letter(s), newest {age:.0f} s old")
        return found


async def _group_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def stage_inputs(
    submissions: list[str], flows: Sequence[Flow]
) -> dict[str, tuple[list[str], float]]:
    """Each stage's input topics and the delay its records wait by design, by stage name:
    the ingress, every stage and timer the ``flows`` declare (a timer is not a consumer:
    no lag, but its dead letters count) and every delay tier."""
    return {
        INGRESS_STAGE: (submissions, 0.0),
        **{stage.name: ([stage.input.name], 0.0) for flow in flows for stage in flow.stages},
        **{timer.name: ([], 0.0) for flow in flows for timer in flow.timers},
        **{f"delay-{t.label}": ([t.topic.name], t.seconds) for t in TIERS},
    }


async def _first_records(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
    end: dict[TopicPartition, int], *, seconds: float,
) -> dict[TopicPartition, ConsumerRecord[bytes, bytes]]:
    """The first record of each of ``partitions`` before ``end``, read for at most
    ``seconds``. A partition whose position reaches its end offset without a record held
    only transaction markers: nothing waits there, and the read stops waiting for it
    (one fetch wait per stage could otherwise last the whole ``seconds``)."""
    firsts: dict[TopicPartition, ConsumerRecord[bytes, bytes]] = {}
    pending = set(partitions)
    deadline = time.monotonic() + seconds
    while pending and time.monotonic() < deadline:
        batches = await consumer.getmany(*pending, timeout_ms=100, max_records=10)
        for tp, records in batches.items():
            if records and tp in pending:
                firsts[tp] = records[0]
                pending.discard(tp)
        for tp in list(pending):
            if await consumer.position(tp) >= end[tp]:
                pending.discard(tp)
    return firsts


async def stage_health(
    bootstrap: str,
    app_id: str,
    flows: Sequence[Flow],
    dead_letter_window: float = DEFAULT_DEAD_LETTER_WINDOW,
) -> list[StageHealth]:
    """The health of every stage of the hub running ``flows`` whose consumer groups start
    with ``app_id``; dead letters written in the last ``dead_letter_window`` seconds and
    not replayed are open."""
    import re

    admin = kafka_clients.admin(bootstrap_servers=bootstrap)
    # A short fetch wait: once partitions are assigned, each next stage's offsets request
    # waits behind the fetcher's long poll on the same connection.
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      fetch_max_wait_ms=100)
    await admin.start()
    await consumer.start()
    try:
        topics = await admin.list_topics()
        submissions = sorted(t for t in topics if re.match(SUBMISSIONS_PATTERN, t))
        inputs = stage_inputs(submissions, flows)
        dead_letters: dict[str, int] = {}
        open_letters: dict[str, int] = {}
        newest_open: dict[str, float] = {}
        replayed = {
            f"{e['source_topic']}:{e['source_partition']}:{e['source_offset']}"
            for e in await read_audit(bootstrap) if e["action"] == "replay"
        }
        since = time.time() - dead_letter_window
        async for letter in read_dead_letters(bootstrap, DeadLetterFilter(hub_stages(flows))):
            dead_letters[letter.stage] = dead_letters.get(letter.stage, 0) + 1
            written = letter.timestamp.timestamp()
            if written >= since and letter.ref not in replayed:
                open_letters[letter.stage] = open_letters.get(letter.stage, 0) + 1
                newest_open[letter.stage] = max(newest_open.get(letter.stage, 0.0), written)
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
                firsts = await _first_records(consumer, waiting, end, seconds=2.0)
                now = time.time()
                heads = []
                for tp, record in firsts.items():
                    lag += end[tp] - record.offset
                    heads.append(record.timestamp / 1000)
                if heads:
                    oldest = max(0.0, now - (min(heads) + delay))
            dead = dead_letters.get(stage, 0)
            newest = newest_open.get(stage)
            results.append(StageHealth(
                stage, group, lag, oldest, dead, open_letters.get(stage, 0),
                None if newest is None else max(0.0, time.time() - newest),
            ))
        return results
    finally:
        await consumer.stop()
        await admin.close()
