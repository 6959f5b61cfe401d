"""Poison records never stall a partition: undecodable or invalid submissions are rejected
with reasons, garbage in the hub's internal topics goes to the stage's dead-letter topic
byte for byte with its error context, and the valid actes right behind them complete."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from hub.flows import FLOWS
from ops.dlq import DeadLetter, hub_stages
from ops.flows import partition_of
from ops.kafka.broker import LocalBroker
from ops.submissions import ActeDraft, publish_acte, publish_raw
from relais.flows.ids import flow_id_for
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from tests.faults.conftest import (
    FaultHub,
    dead_letters,
    drafts,
    flow_of,
    notifications,
    sandbox_stats,
    start_fault_hub,
    wait_for_states,
)
from topics.acts import ACTS_DELIVERY, ACTS_STATUS

pytestmark = pytest.mark.faults

ENV = {
    "RELAIS_RETRY_TIERS": "5s,5s,5s",
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "5",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}
UNDECODABLE = b"\x00\xffthis is not an Avro value\x00"


@pytest.fixture(scope="module")
def hub(fault_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultHub]:
    running = start_fault_hub(fault_broker, tmp_path_factory, prefix="33", members=2, env=ENV)
    try:
        yield running
    finally:
        running.close()


def _covering(candidates: list[ActeDraft], per_partition: int = 2) -> list[ActeDraft]:
    """Actes whose flows hash to every partition of the 3-partition internal topics."""
    chosen: list[ActeDraft] = []
    counts: Counter[int] = Counter()
    for draft in candidates:
        partition = partition_of(flow_of(draft), 3)
        if counts[partition] < per_partition:
            chosen.append(draft)
            counts[partition] += 1
    assert set(counts) == {0, 1, 2}
    return chosen


async def _poison_internal(bootstrap: str, siren: str) -> dict[str, tuple[str, int, int, bytes]]:
    """Garbage in each partition of acts.delivery and acts.status; flow → where it went."""
    producer = kafka_clients.producer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    placed: dict[str, tuple[str, int, int, bytes]] = {}
    try:
        for topic in (ACTS_DELIVERY.name, ACTS_STATUS.name):
            for partition in range(3):
                flow = flow_id_for(siren, f"poison-{topic}-{partition}")
                value = b"\x00garbage-" + os.urandom(24)
                meta = await producer.send_and_wait(
                    topic, value, key=flow.encode(), partition=partition,
                    headers=[(FLOW_ID_HEADER, flow.encode()), (h.MEMBER, siren.encode())],
                )
                placed[flow] = (topic, partition, meta.offset, value)
    finally:
        await producer.stop()
    return placed


def _check_dead_letter(letter: DeadLetter, where: tuple[str, int, int, bytes], stage: str) -> None:
    topic, partition, offset, value = where
    assert letter.value == value, "the dead letter must keep the value byte for byte"
    assert letter.header(h.DLQ_ORIGIN_TOPIC) == topic
    assert letter.header(h.DLQ_ORIGIN_PARTITION) == str(partition)
    assert letter.header(h.DLQ_ORIGIN_OFFSET) == str(offset)
    assert letter.header(h.DLQ_STAGE) == stage
    assert "DecodeError" in (letter.header(h.DLQ_ERROR_CLASS) or ""), letter.error_class
    assert letter.header(h.DLQ_ERROR_CODE) == "value_decode"
    assert letter.header(h.DLQ_ERROR_MESSAGE)
    assert letter.header(h.ATTEMPT) == "1", "a decode error is not retried"
    assert letter.header(h.MEMBER) == letter.member
    assert letter.header(FLOW_ID_HEADER) == letter.flow_id


def _one(notes: list[dict[str, Any]], flow: str, kind: str) -> dict[str, Any]:
    found = [n for n in notes if n["flow_id"] == flow and n["kind"] == kind]
    assert len(found) == 1, (flow, kind, [(n["kind"], n["state"]) for n in notes
                                          if n["flow_id"] == flow])
    return found[0]


async def test_poison_records_do_not_stall(hub: FaultHub) -> None:
    started = time.monotonic()
    a, b = hub.sirens
    codec = AvroCodec()
    valid_a = drafts(a, hub.blob, 3, tag="V")
    invalid = replace(drafts(a, hub.blob, 1, tag="X")[0], nature_code=42, objet="")
    unknown_fp = b"\xc3\x01" + os.urandom(8) + b"a body nobody can read"

    # Internal topics first, so the valid actes of member b come behind the garbage.
    placed = await _poison_internal(hub.bootstrap, b)
    valid_b = _covering(drafts(b, hub.blob, 40, tag="W"))

    publisher = Publisher(hub.bootstrap, codec, client_id="fault-tests")
    await publisher.start()
    try:
        await publish_raw(publisher, a, "poison-a", UNDECODABLE)
        await publish_acte(publisher, valid_a[0])
        await publish_raw(publisher, a, "poison-b", unknown_fp)
        await publish_acte(publisher, valid_a[1])
        await publish_acte(publisher, invalid)
        await publish_acte(publisher, valid_a[2])
        for draft in valid_b:
            await publish_acte(publisher, draft)
    finally:
        await publisher.stop()

    poison_a, poison_b = flow_id_for(a, "poison-a"), flow_id_for(a, "poison-b")
    valid = {flow_of(d) for d in [*valid_a, *valid_b]}
    rejected = {poison_a, poison_b, flow_of(invalid)}
    failed = set(placed)
    expected = valid | rejected | failed

    def done(states: dict[str, str], _: set[str]) -> bool:
        return (all(states.get(f) == "acknowledged" for f in valid)
                and all(states.get(f) == "rejected" for f in rejected)
                and all(states.get(f) == "failed" for f in failed))

    states, _ = await wait_for_states(hub.bootstrap, expected, done, timeout=120, every=1)
    elapsed = time.monotonic() - started
    letters = await dead_letters(hub.bootstrap)
    by_stage = Counter(letter.stage for letter in letters)
    print(f"\npoison records: {len(placed) + 3} poison, {len(valid)} valid actes behind them, "
          f"all settled after {elapsed:.1f} s; dead letters {dict(by_stage)}; "
          f"states {dict(Counter(states.values()))}")
    assert done(states, set()), {f: states.get(f) for f in expected if f not in states
                                 or (f in valid and states[f] != "acknowledged")}

    # Each internal-topic poison record is in its stage's dead-letter topic, untouched.
    assert by_stage == {"acts-delivery": 3, "acts-status": 3}, by_stage
    assert set(hub_stages(FLOWS)) >= set(by_stage)
    for letter in letters:
        assert letter.flow_id in placed, letter.flow_id
        origin = placed[letter.flow_id]
        stage = "acts-delivery" if origin[0] == ACTS_DELIVERY.name else "acts-status"
        assert letter.topic == f"relais.dlq.{stage}"
        _check_dead_letter(letter, origin, stage)

    notes_a = await notifications(hub.bootstrap, a)
    note = _one(notes_a, poison_a, "REJECTED")
    assert note["reasons"][0]["code"] == "value_decode", note["reasons"]
    note = _one(notes_a, poison_b, "REJECTED")
    assert note["reasons"][0]["code"] == "unknown_schema", note["reasons"]
    note = _one(notes_a, flow_of(invalid), "REJECTED")
    fields = {r["field"] for r in note["reasons"]}
    assert {"nature_code", "objet"} <= fields, note["reasons"]
    notes_b = await notifications(hub.bootstrap, b)
    for flow in placed:
        note = _one(notes_b, flow, "FAILED")
        assert note["state"] == "failed"
    for notes, siren in ((notes_a, a), (notes_b, b)):
        assert {n["member_siren"] for n in notes} == {siren}

    stats = await sandbox_stats(hub)
    assert stats["transactions_created"] == len(valid), "only the valid actes reach the TdT"
    assert stats["duplicate_posts"] == 0
