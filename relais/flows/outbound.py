"""What a stage handler returns: records to publish, already encoded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from relais.errors import Reason
from relais.flows.ids import transition_ids
from relais.kafka.publisher import dataschema_uri
from relais.wire.avro_codec import AvroCodec, SchemaVersion
from relais.wire.headers import EventHeaders


@dataclass(frozen=True)
class Outbound:
    """One record a handler wants published. Handlers return these; the stage runner
    publishes them (atomically with the input offset where the stage is transactional)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def encode_outbound(
    codec: AvroCodec,
    *,
    topic: str,
    key: str,
    schema_name: str,
    record: dict[str, Any],
    source: str,
    event_id: str,
    subject: str,
    flow_id: str,
    parent: EventHeaders | None,
    extra: dict[str, str] | None = None,
) -> Outbound:
    """``record`` encoded with the current ``schema_name``, with its CloudEvents headers
    (and ``extra`` ones after them, e.g. ``relais_member``)."""
    schema = codec.catalog.current(schema_name)
    headers = EventHeaders.new(
        source=source,
        type=schema.full_name,
        subject=subject,
        flow_id=flow_id,
        dataschema=_dataschema(codec, schema_name, schema),
        event_id=event_id,
        parent=parent,
        extra=extra,
    )
    return Outbound(topic, key.encode("utf-8"), codec.encode(schema_name, record),
                    headers.to_kafka())


#: ``ce_dataschema`` by (full name, version) of the writer schema (a few dozen): built
#: once, not once per record.
_DATASCHEMAS: dict[tuple[str, int], str] = {}


def _dataschema(codec: AvroCodec, schema_name: str, schema: SchemaVersion) -> str:
    key = (schema.full_name, schema.version)
    uri = _DATASCHEMAS.get(key)
    if uri is None:
        uri = _DATASCHEMAS[key] = dataschema_uri(codec, schema_name)
    return uri


@dataclass(frozen=True)
class FlowContext:
    """Who a flow belongs to, as every notification and state event repeats it."""

    flow_id: str
    member_siren: str
    flow_type: str
    submission_id: str | None


def notification_record(
    flow: FlowContext,
    *,
    kind: str,
    state: str,
    message: str,
    reasons: list[Reason] | None = None,
    partner_ref: str | None = None,
    documents: list[dict[str, Any]] | None = None,
    details: dict[str, str] | None = None,
    event_key: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A Notification record; its event id is stable for (flow, state, event_key): the
    notification id of :func:`relais.flows.ids.transition_ids` (``event_id``: that id,
    when the caller has it already)."""
    return {
        "event_id": event_id or transition_ids(flow.flow_id, state, event_key or "")[0],
        "flow_id": flow.flow_id,
        "member_siren": flow.member_siren,
        "submission_id": flow.submission_id,
        "flow_type": flow.flow_type,
        "kind": kind,
        "state": state,
        "message": message,
        "reasons": [
            {"field": r.field, "code": r.code, "message": r.message} for r in reasons or []
        ],
        "partner_ref": partner_ref,
        "documents": documents or [],
        "details": details or {},
        "occurred_at": datetime.now(UTC),
    }


def flow_state_record(
    flow: FlowContext,
    *,
    state: str,
    previous_state: str | None,
    stage: str,
    sequence: int,
    partner_ref: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    details: dict[str, str] | None = None,
    reasons: list[Reason] | None = None,
) -> dict[str, Any]:
    """A FlowState record; ``reasons`` are the sub-codes under ``error_code``."""
    return {
        "flow_id": flow.flow_id,
        "flow_type": flow.flow_type,
        "member_siren": flow.member_siren,
        "submission_id": flow.submission_id,
        "state": state,
        "previous_state": previous_state,
        "stage": stage,
        "sequence": sequence,
        "partner_ref": partner_ref,
        "error_code": error_code,
        "error_message": error_message,
        "details": details or {},
        "reasons": [
            {"field": r.field, "code": r.code, "message": r.message} for r in reasons or []
        ],
        "occurred_at": datetime.now(UTC),
    }
