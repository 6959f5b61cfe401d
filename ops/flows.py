"""Reading flows for operators: one flow's history, or the latest state of many.

``relais flows show`` reads the one partition of ``relais.flows.events`` the flow
id hashes to (Kafka's default partitioner), so it does not scan the topic;
``relais flows list`` reads the compacted ``relais.flows.state`` whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from relais.errors import DecodeError
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import FLOW_EVENTS, FLOW_STATE


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    hashed: int = murmur2(key.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % partitions


async def _read_all(
    bootstrap: str, topic: str, pick: Callable[[int], list[int]], codec: AvroCodec
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every FlowState of the partitions ``pick(partition_count)`` of ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    out: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        partitions = await consumer._client._wait_on_metadata(topic)
        assignments = [TopicPartition(topic, p) for p in pick(len(partitions))]
        consumer.assign(assignments)
        await consumer.seek_to_beginning(*assignments)
        end = await consumer.end_offsets(assignments)
        while True:
            positions = {tp: await consumer.position(tp) for tp in assignments}
            if all(positions[tp] >= end[tp] for tp in assignments):
                break
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        value = codec.decode(record.value, expected="FlowState").record
                    except DecodeError:
                        continue
                    out.append((record.key, value))
    finally:
        await consumer.stop()
    return out


async def flow_history(bootstrap: str, flow_id: str) -> list[dict[str, Any]]:
    """Every event of one flow, oldest first."""
    events = await _read_all(
        bootstrap, FLOW_EVENTS.name, lambda count: [partition_of(flow_id, count)], AvroCodec()
    )
    return [value for key, value in events if key == flow_id.encode("utf-8")]


@dataclass(frozen=True)
class FlowFilter:
    member: str | None = None
    flow_type: str | None = None
    state: str | None = None
    stage: str | None = None
    error_code: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, state: dict[str, Any]) -> bool:
        at: datetime = state["occurred_at"]
        return (
            (self.member is None or state["member_siren"] == self.member)
            and (self.flow_type is None or state["flow_type"] == self.flow_type)
            and (self.state is None or state["state"] == self.state)
            and (self.stage is None or state["stage"] == self.stage)
            and (self.error_code is None or (state["error_code"] or "").startswith(
                self.error_code))
            and (self.since is None or at >= self.since)
            and (self.until is None or at <= self.until)
        )


async def latest_states(bootstrap: str, flow_filter: FlowFilter) -> list[dict[str, Any]]:
    """The latest state of every flow that matches, most recent first."""
    latest: dict[bytes | None, dict[str, Any]] = {}
    records = await _read_all(bootstrap, FLOW_STATE.name, lambda n: list(range(n)), AvroCodec())
    for key, value in records:
        latest[key] = value
    found = [state for state in latest.values() if flow_filter.matches(state)]
    return sorted(found, key=lambda s: s["occurred_at"], reverse=True)
