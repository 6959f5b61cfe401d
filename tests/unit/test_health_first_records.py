"""`relais health` reads the first waiting record of each partition, and stops waiting for a
partition that holds only transaction markers."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import TopicPartition

from ops.health import _first_records

RECORDS = TopicPartition("relais.acts.submitted", 0)
MARKERS = TopicPartition("relais.acts.submitted", 1)


class Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.timestamp = 1_700_000_000_000


class FakeConsumer:
    """RECORDS holds records at 5 and 6 (returned on the second fetch); MARKERS holds only
    a commit marker at 3, which the first fetch steps over without a record."""

    def __init__(self) -> None:
        self.positions = {RECORDS: 5, MARKERS: 3}
        self.fetches = 0

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int,
                      max_records: int) -> dict[TopicPartition, list[Any]]:
        self.fetches += 1
        if MARKERS in partitions:
            self.positions[MARKERS] = 4  # the marker read: nothing returned
        if self.fetches >= 2 and RECORDS in partitions:
            self.positions[RECORDS] = 7
            return {RECORDS: [Record(5), Record(6)]}
        return {}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


async def test_the_first_record_is_found_and_a_markers_only_partition_is_not_waited_for(
) -> None:
    consumer = FakeConsumer()
    started = time.monotonic()
    firsts = await _first_records(consumer, [RECORDS, MARKERS],  # type: ignore[arg-type]
                                  {RECORDS: 7, MARKERS: 4}, seconds=30.0)
    assert time.monotonic() - started < 5.0, "waited for the markers-only partition"
    assert {tp: record.offset for tp, record in firsts.items()} == {RECORDS: 5}
    assert consumer.fetches == 2


async def test_a_partition_without_records_is_given_up_after_the_time_allowed() -> None:
    consumer = FakeConsumer()
    consumer.positions[MARKERS] = 2  # stays below its end: a record that never comes
    started = time.monotonic()

    async def nothing(*partitions: TopicPartition, timeout_ms: int,
                      max_records: int) -> dict[TopicPartition, list[Any]]:
        return {}

    consumer.getmany = nothing  # type: ignore[method-assign]
    firsts = await _first_records(consumer, [MARKERS],  # type: ignore[arg-type]
                                  {MARKERS: 4}, seconds=0.3)
    assert firsts == {}
    assert 0.3 <= time.monotonic() - started < 5.0
