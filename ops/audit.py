"""The audit journal (``relais.ops.audit``): every operator action, append-only."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from relais.kafka import clients as kafka_clients
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import OPS_AUDIT


def current_operator() -> str:
    """Who runs the command: RELAIS_OPERATOR, else the login name."""
    return os.environ.get("RELAIS_OPERATOR") or getpass.getuser()


def audit_entry(
    action: str, *, operator: str, reason: str, run_id: str, **fields: Any
) -> dict[str, Any]:
    return {
        "action": action, "operator": operator, "reason": reason, "run_id": run_id,
        "at": datetime.now(UTC), "source_topic": fields.get("source_topic"),
        "source_partition": fields.get("source_partition"),
        "source_offset": fields.get("source_offset"), "target_topic": fields.get("target_topic"),
        "flow_id": fields.get("flow_id"), "member_siren": fields.get("member_siren"),
        "details": {k: str(v) for k, v in (fields.get("details") or {}).items()},
    }


async def read_audit(bootstrap: str, codec: AvroCodec | None = None) -> list[dict[str, Any]]:
    """Every audit entry, oldest first."""
    codec = codec or AvroCodec()
    tp = TopicPartition(OPS_AUDIT.name, 0)
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    entries: list[dict[str, Any]] = []
    try:
        end = (await consumer.end_offsets([tp]))[tp]  # before the fetcher's long poll starts
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                entries += [codec.decode(r.value, expected="AuditEntry").record
                            for r in records if r.value is not None]
    finally:
        await consumer.stop()
    return entries
