"""Reading dead-letter topics: what failed, where, why, how often."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import TopicPartition

from relais.flows.kit import Flow, dead_letter_names
from relais.kafka import clients as kafka_clients
from relais.stages import headers as h
from relais.wire.headers import FLOW_ID_HEADER
from topics.catalogue import INGRESS_STAGE, dlq


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record with its error context (from its headers)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        return h.get(self.headers, name)

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def stage(self) -> str:
        return self.header(h.DLQ_STAGE) or self.topic.removeprefix("relais.dlq.")

    @property
    def flow_id(self) -> str | None:
        return self.header(FLOW_ID_HEADER)

    @property
    def member(self) -> str | None:
        return self.header(h.MEMBER)

    @property
    def error_code(self) -> str:
        return self.header(h.DLQ_ERROR_CODE) or "unknown"

    @property
    def error_class(self) -> str:
        return self.header(h.DLQ_ERROR_CLASS) or "unknown"

    @property
    def origin_topic(self) -> str | None:
        return self.header(h.DLQ_ORIGIN_TOPIC)

    @property
    def replay_count(self) -> int:
        return h.get_count(self.headers, h.REPLAY_COUNT)  # garbage reads as 0, never raises


def hub_stages(flows: Iterable[Flow]) -> tuple[str, ...]:
    """Every name with a dead-letter topic in a hub running ``flows``: the ingress, then
    each declared stage and timer."""
    return (INGRESS_STAGE, *dead_letter_names(flows))


@dataclass(frozen=True)
class DeadLetterFilter:
    #: the stages whose dead-letter topics are read (``hub_stages(FLOWS)``: all of them)
    stages: tuple[str, ...]
    member: str | None = None
    flow_id: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        error = self.error
        return (
            (self.member is None or letter.member == self.member)
            and (self.flow_id is None or letter.flow_id == self.flow_id)
            and (error is None or letter.error_code.startswith(error)
                 or error in letter.error_class)
            and (self.since is None or letter.timestamp >= self.since)
            and (self.until is None or letter.timestamp <= self.until)
        )


async def read_dead_letters(
    bootstrap: str, letter_filter: DeadLetterFilter
) -> AsyncIterator[DeadLetter]:
    """Every dead letter that matches, up to the end offsets found when the read starts."""
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        assignments: list[TopicPartition] = []
        for stage in letter_filter.stages:
            topic = dlq(stage).name
            partitions = await consumer._client._wait_on_metadata(topic)
            assignments += [TopicPartition(topic, p) for p in sorted(partitions)]
        end = await consumer.end_offsets(assignments)  # before the fetcher's long poll starts
        consumer.assign(assignments)
        await consumer.seek_to_beginning(*assignments)
        remaining = {tp for tp in assignments if end[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp]:
                        break
                    letter = DeadLetter(
                        topic=record.topic, partition=record.partition, offset=record.offset,
                        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
                        key=record.key, value=record.value, headers=tuple(record.headers or ()),
                    )
                    if letter_filter.matches(letter):
                        yield letter
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
