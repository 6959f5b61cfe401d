"""Hostile Avro bodies: whatever fastavro raises becomes a ValueDecodeError, and a value its
logical type cannot hold is named by field (issue 13, F1)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import schemaless_writer

from relais.errors import ValueDecodeError
from relais.wire.avro_codec import SINGLE_OBJECT_MARKER, AvroCodec

CODEC = AvroCodec()


def plain(schema_name: str, record: dict[str, Any]) -> bytes:
    """``record`` written with the schema's Avro types only (no logical type checks)."""
    schema = CODEC.catalog.current(schema_name)
    body = io.BytesIO()
    schemaless_writer(body, schema.plain, record)
    return SINGLE_OBJECT_MARKER + schema.fingerprint + body.getvalue()


def notification(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "e", "flow_id": "f", "member_siren": "212102313", "submission_id": None,
        "flow_type": "acte", "kind": "ACCEPTED", "state": "received", "message": "m",
        "reasons": [], "partner_ref": None, "documents": [], "details": {},
        "occurred_at": int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000),
    }
    record.update(changes)
    return record


@pytest.mark.parametrize("millis", [2**63 - 1, -(2**63)])
def test_a_timestamp_out_of_range_is_named(millis: int) -> None:
    with pytest.raises(ValueDecodeError) as raised:
        CODEC.decode(plain("Notification", notification(occurred_at=millis)))
    assert [(r.field, r.code) for r in raised.value.reasons] == [("occurred_at", "out_of_range")]
    assert str(millis) in raised.value.reasons[0].message


def test_a_value_in_range_still_decodes() -> None:
    decoded = CODEC.decode(plain("Notification", notification()))
    assert decoded.record["occurred_at"] == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_corrupt_body_is_a_decode_error_without_a_field() -> None:
    value = plain("Notification", notification())
    with pytest.raises(ValueDecodeError) as raised:
        CODEC.decode(value[:12] + b"\xff" * 9 + value[21:])
    assert [r.field for r in raised.value.reasons] == ["value"]
