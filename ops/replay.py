"""Replaying dead letters safely: in bulk, by filter, at a bounded rate, resumable, audited.

Each replayed record goes back, byte for byte, to the topic it failed on, with
its bookkeeping headers reset and ``relais_replay_count`` raised; the record and
its audit entry are published in ONE transaction, so a replay is never half
done. The audit journal is also the checkpoint and the loop guard:

- a dead letter the journal shows as replayed is refused (a second replay of the
  same records, or the rest of an interrupted run, which therefore resumes);
- a record that already came back ``max_replays`` times is refused.

Stages keep their own idempotency (the delivery journal, deterministic event
ids), so a replayed acte that had in fact reached its partner is not sent twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from ops.audit import audit_entry, read_audit
from ops.dlq import DeadLetter, DeadLetterFilter, read_dead_letters
from relais.kafka import clients as kafka_clients
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.catalogue import OPS_AUDIT


@dataclass
class ReplayReport:
    run_id: str
    matched: int = 0
    replayed: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    planned: list[DeadLetter] = field(default_factory=list)

    def refuse(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1


def _refusal(letter: DeadLetter, replayed: set[str], max_replays: int) -> str | None:
    if letter.ref in replayed:
        return "already replayed"
    if letter.replay_count >= max_replays:
        return f"loop guard: replayed {letter.replay_count} times already"
    if not letter.origin_topic:
        return "no origin topic in its headers"
    return None


def replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The record's own headers without the failure bookkeeping, one replay more."""
    kept = [(k, v) for k, v in letter.headers if k not in h.BOOKKEEPING and k != h.REPLAY_COUNT]
    return [*kept, (h.REPLAY_COUNT, str(letter.replay_count + 1).encode())]


async def replay(
    bootstrap: str,
    letter_filter: DeadLetterFilter,
    *,
    operator: str,
    reason: str,
    dry_run: bool = False,
    rate: float = 50.0,
    max_replays: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay the dead letters that match; see the module docstring for the guarantees."""
    codec = AvroCodec()
    report = ReplayReport(run_id=uuid.uuid4().hex[:12], dry_run=dry_run)
    replayed_refs = {
        f"{e['source_topic']}:{e['source_partition']}:{e['source_offset']}"
        for e in await read_audit(bootstrap, codec) if e["action"] == "replay"
    }
    letters = [letter async for letter in read_dead_letters(bootstrap, letter_filter)]
    report.matched = len(letters)
    producer: AIOKafkaProducer | None = None
    if not dry_run:
        producer = kafka_clients.producer(
            bootstrap_servers=bootstrap,
            transactional_id=f"relais-replay-{socket.gethostname()}-{os.getpid()}",
            max_request_size=4 * 1024 * 1024,
        )
        await producer.start()
    interval = 1.0 / rate if rate > 0 else 0.0
    try:
        for index, letter in enumerate(letters, start=1):
            why = _refusal(letter, replayed_refs, max_replays)
            if why is not None:
                report.refuse(why)
            elif dry_run:
                report.planned.append(letter)
            else:
                assert producer is not None and letter.origin_topic is not None
                started = time.monotonic()
                entry = audit_entry(
                    "replay", operator=operator, reason=reason, run_id=report.run_id,
                    source_topic=letter.topic, source_partition=letter.partition,
                    source_offset=letter.offset, target_topic=letter.origin_topic,
                    flow_id=letter.flow_id, member_siren=letter.member,
                    details={"stage": letter.stage, "error_code": letter.error_code,
                             "replay_count": letter.replay_count + 1},
                )
                audit_headers = EventHeaders.new(
                    source="/relais/ops/replay", type="fr.relais.ops.AuditEntry",
                    subject=letter.ref, flow_id=letter.flow_id,
                ).to_kafka()
                async with producer.transaction():
                    await producer.send(letter.origin_topic, letter.value, key=letter.key,
                                        headers=replay_headers(letter))
                    await producer.send(OPS_AUDIT.name, codec.encode("AuditEntry", entry),
                                        key=letter.ref.encode(), headers=audit_headers)
                replayed_refs.add(letter.ref)
                report.replayed += 1
                pause = interval - (time.monotonic() - started)
                if pause > 0:
                    await asyncio.sleep(pause)
            if progress is not None:
                progress(index, len(letters))
    finally:
        if producer is not None:
            await producer.stop()
    return report
