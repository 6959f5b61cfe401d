"""Reading flows for operators: one flow's history, or the latest state of many.

``relais flows show`` reads the one partition of ``relais.flows.events`` the flow
id hashes to (Kafka's default partitioner), so it does not scan the topic;
``relais flows list`` reads the compacted ``relais.flows.state`` whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from relais.errors import DecodeError
from relais.flows.machine import FlowMachine
from relais.flows.progress import fold_history
from relais.kafka import clients as kafka_clients
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
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    out: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        partitions = await consumer._client._wait_on_metadata(topic)
        assignments = [TopicPartition(topic, p) for p in pick(len(partitions))]
        end = await consumer.end_offsets(assignments)  # before the fetcher's long poll starts
        consumer.assign(assignments)
        await consumer.seek_to_beginning(*assignments)
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


async def flow_history(
    bootstrap: str, flow_id: str, *, machines: Mapping[str, FlowMachine]
) -> list[dict[str, Any]]:
    """Every event of one flow, oldest first, but those that would have moved it back (a
    resent submission of an acknowledged acte), which ``relais.flows.state`` leaves out too
    (:mod:`relais.flows.progress`; ``machines``: flow type → machine, ``machines_of(FLOWS)``)."""
    events = await _read_all(
        bootstrap, FLOW_EVENTS.name, lambda count: [partition_of(flow_id, count)], AvroCodec()
    )
    return fold_history([value for key, value in events if key == flow_id.encode("utf-8")],
                        machines)


def error_codes(state: dict[str, Any]) -> list[str]:
    """The event's error code, then the sub-code of each of its reasons (``invalid_envelope``,
    ``member_mismatch``, ``blob_not_found``…), without repeats."""
    codes = [state["error_code"]] if state.get("error_code") else []
    for reason in state.get("reasons") or ():
        if reason["code"] not in codes:
            codes.append(reason["code"])
    return codes


def reason_lines(state: dict[str, Any]) -> list[str]:
    """One ``field code: message`` line per reason of the event."""
    return [f"{r['field']} {r['code']}: {r['message']}" for r in state.get("reasons") or ()]


def state_line(state: dict[str, Any]) -> str:
    """One line of ``relais flows list``: id, type, state, time, partner ref, error codes."""
    line = (f"{state['flow_id']}  {state['flow_type']:<7} {state['state']:<13} "
            f"{state['occurred_at']:%Y-%m-%d %H:%M:%S}  {state['partner_ref'] or ''}")
    codes = error_codes(state)
    if codes:
        line += f"  {codes[0]}"
        if len(codes) > 1:
            line += f" ({', '.join(codes[1:])})"
    return line


def history_lines(flow_id: str, events: list[dict[str, Any]]) -> list[str]:
    """``relais flows show``: a header line, then one line per event and one per reason."""
    first = events[0]
    lines = [f"flow {flow_id}  type={first['flow_type']}  member={first['member_siren']}  "
             f"submission={first['submission_id']}"]
    for event in events:
        child = event["details"].get("child_event")
        label = f"{event['state']} (+{child})" if child else event["state"]
        line = f"  {event['occurred_at']:%Y-%m-%d %H:%M:%S}  {label:<28} by {event['stage']}"
        if event["partner_ref"]:
            line += f"  ref={event['partner_ref']}"
        if event["error_code"]:
            line += f"  error={event['error_code']}: {event['error_message']}"
        lines.append(line)
        lines += [f"      - {reason}" for reason in reason_lines(event)]
    return lines


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
            and (self.error_code is None
                 or any(code.startswith(self.error_code) for code in error_codes(state)))
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
