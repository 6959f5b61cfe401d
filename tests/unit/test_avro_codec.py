"""The Avro single-object codec: round trips, framing, errors and schema resolution."""

from __future__ import annotations

import copy
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

import schemas
from relais.errors import UnknownSchemaError, ValidationError, ValueDecodeError
from relais.wire.avro_codec import SINGLE_OBJECT_MARKER, AvroCodec, SchemaCatalog
from schemas.compat import sample_datum, variant_count

AT = datetime(2024, 5, 17, 9, 41, 12, 345000, tzinfo=UTC)
SHA_PDF = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA_ANNEX = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

MEMBER: dict[str, Any] = {
    "siren": "217500016",
    "name": "Commune de Dijon",
    "department": "021",
    "token_sha256": "3b5d5c3712955042212316173ccf37be800d7b6ea2a1c54bd0f29cd9a2b5e5a1",
    "active": True,
    "registered_at": AT,
    "tdt": {
        "url": "https://tdt.example.fr/modules/actes/",
        "login": "dijon-actes",
        "password_env": "RELAIS_TDT_PASSWORD_DIJON",
        "cert_file": "/etc/relais/certs/dijon.pem",
        "key_file": None,
        "arrondissement": 2,
        "nature_collectivite": "32",
        "key_password_env": "RELAIS_TDT_KEY_PASSWORD_DIJON",
        "ca_file": None,
    },
    "accounts": {},
    "retry_tiers": None,
    "contractor_check": "warn",
    "legal_category": None,
    "commune": None,
    "commune_code": None,
}

ACTE: dict[str, Any] = {
    "submission_id": "DELIB-2024-117",
    "member_siren": "217500016",
    "nature_code": 1,
    "matieres": [7, 1],
    "numero_interne": "DE2024_117",
    "decision_date": date(2024, 5, 16),
    "objet": "Subvention à l'association des Amis de la Bibliothèque",
    "document": {
        "blob": {
            "sha256": SHA_PDF,
            "size": 182_311,
            "media_type": "application/pdf",
            "filename": "deliberation-117.pdf",
        },
        "typology": "99_DE",
    },
    "annexes": [
        {
            "blob": {
                "sha256": SHA_ANNEX,
                "size": 20_480,
                "media_type": "application/pdf",
                "filename": "annexe-budget.pdf",
            },
            "typology": None,
        }
    ],
    "document_papier": False,
    "classification_date": date(2023, 11, 2),
    "contractor_sirets": [],
}

NOTIFICATION: dict[str, Any] = {
    "event_id": "2f0b8a0e-7f6b-5c1e-9d53-0d2b6f1e4a77",
    "flow_id": "217500016-0b9c2f5e-3a9d-5d4f-8f6e-1c2b3a4d5e6f",
    "member_siren": "217500016",
    "submission_id": "DELIB-2024-117",
    "flow_type": "acte",
    "kind": "REJECTED",
    "state": "rejected",
    "message": "the submission's envelope was refused",
    "reasons": [
        {
            "field": "document.blob.sha256",
            "code": "blob_not_found",
            "message": f"no blob with digest {SHA_PDF} was uploaded",
        }
    ],
    "partner_ref": None,
    "documents": [
        {
            "sha256": SHA_PDF,
            "size": 182_311,
            "media_type": "application/pdf",
            "filename": "deliberation-117.pdf",
        }
    ],
    "details": {"topic": "relais.member.217500016.submissions", "offset": "42"},
    "occurred_at": AT,
}

FLOW_STATE: dict[str, Any] = {
    "flow_id": "217500016-0b9c2f5e-3a9d-5d4f-8f6e-1c2b3a4d5e6f",
    "flow_type": "acte",
    "member_siren": "217500016",
    "submission_id": "DELIB-2024-117",
    "state": "transmitted",
    "previous_state": "received",
    "stage": "acts-delivery",
    "sequence": 2,
    "partner_ref": "021-217500016-20240516-DE2024_117-DE",
    "error_code": None,
    "error_message": None,
    "details": {"tdt_transaction": "88123"},
    "reasons": [],
    "occurred_at": AT,
}

RECORDS = {
    "Member": MEMBER,
    "ActeSubmission": ACTE,
    "Notification": NOTIFICATION,
    "FlowState": FLOW_STATE,
}


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def canonical_fingerprint(schema_json: dict[str, Any]) -> bytes:
    parsed = parse_schema(copy.deepcopy(schema_json), _write_hint=False)
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def crc64_avro(data: bytes) -> int:
    """The Avro specification's Rabin fingerprint, written out independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_the_realistic_records_cover_known_schemas() -> None:
    assert set(RECORDS) <= set(schemas.schema_names())


@pytest.mark.parametrize("name", schemas.schema_names())
def test_round_trip_of_sample_data_of_every_schema(codec: AvroCodec, name: str) -> None:
    parsed = codec.catalog.current(name).parsed
    for variant in range(variant_count(parsed)):
        datum = sample_datum(parsed, variant)
        decoded = codec.decode(codec.encode(name, datum), expected=name)
        assert decoded.schema_name == name
        assert decoded.record == datum


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_round_trip(codec: AvroCodec, name: str) -> None:
    data = codec.encode(name, RECORDS[name])
    decoded = codec.decode(data)
    assert decoded.schema_name == name
    assert decoded.record == RECORDS[name]
    assert decoded.writer_version == schemas.history(name)[-1][0]
    assert codec.decode(data, expected=name).record == RECORDS[name]


def test_round_trip_member_without_tdt(codec: AvroCodec) -> None:
    record = {**MEMBER, "tdt": None, "active": False}
    assert codec.decode(codec.encode("Member", record)).record == record


def test_defaults_fill_omitted_fields(codec: AvroCodec) -> None:
    record = {k: v for k, v in ACTE.items() if k not in ("annexes", "document_papier")}
    decoded = codec.decode(codec.encode("ActeSubmission", record)).record
    assert decoded["annexes"] == []
    assert decoded["document_papier"] is False


def test_encoding_is_deterministic(codec: AvroCodec) -> None:
    assert codec.encode("Notification", NOTIFICATION) == codec.encode("Notification", NOTIFICATION)


# --- framing -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_single_object_header(codec: AvroCodec, name: str) -> None:
    data = codec.encode(name, RECORDS[name])
    assert data[:2] == b"\xc3\x01" == SINGLE_OBJECT_MARKER
    schema_json = schemas.load_schema_json(name)
    assert data[2:10] == canonical_fingerprint(schema_json)
    canonical = to_parsing_canonical_form(parse_schema(copy.deepcopy(schema_json)))
    assert data[2:10] == crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")
    assert codec.catalog.current(name).fingerprint == data[2:10]


def test_body_is_plain_avro_binary(codec: AvroCodec) -> None:
    data = codec.encode("FlowState", FLOW_STATE)
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(schemas.load_schema_json("FlowState")), FLOW_STATE)
    assert data[10:] == body.getvalue()


def test_crc64_avro_known_value() -> None:
    # the Avro specification's fingerprint of the schema "int"
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F


# --- decoding errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc3", b"\xc3\x01\x00", b"\x00\x00\x00\x00\x01rest-of-a-confluent-value", b"{}"],
    ids=["empty", "half-marker", "short-header", "confluent-framing", "json"],
)
def test_bad_marker_or_short_value_is_a_value_decode_error(codec: AvroCodec, data: bytes) -> None:
    with pytest.raises(ValueDecodeError):
        codec.decode(data)


def test_wrong_marker_with_valid_rest_is_a_value_decode_error(codec: AvroCodec) -> None:
    data = codec.encode("Member", MEMBER)
    with pytest.raises(ValueDecodeError):
        codec.decode(b"\xc3\x02" + data[2:])


def test_unknown_fingerprint(codec: AvroCodec) -> None:
    data = codec.encode("Member", MEMBER)
    with pytest.raises(UnknownSchemaError) as raised:
        codec.decode(data[:2] + b"\x00" * 8 + data[10:])
    assert raised.value.code == "unknown_schema"
    assert not raised.value.retriable


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_truncation_of_the_body_is_a_value_decode_error(codec: AvroCodec, name: str) -> None:
    data = codec.encode(name, RECORDS[name])
    for length in range(10, len(data)):
        with pytest.raises(ValueDecodeError):
            codec.decode(data[:length])


def test_trailing_bytes(codec: AvroCodec) -> None:
    data = codec.encode("FlowState", FLOW_STATE)
    with pytest.raises(ValueDecodeError, match="trailing"):
        codec.decode(data + b"\x00")


def test_expected_schema_mismatch(codec: AvroCodec) -> None:
    data = codec.encode("Member", MEMBER)
    with pytest.raises(UnknownSchemaError):
        codec.decode(data, expected="ActeSubmission")


def test_unknown_schema_name_on_encode(codec: AvroCodec) -> None:
    with pytest.raises(UnknownSchemaError):
        codec.encode("NoSuchSchema", {})


# --- validation on encode ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("Member", {k: v for k, v in MEMBER.items() if k != "name"}),
        ("Member", {k: v for k, v in MEMBER.items() if k != "registered_at"}),
        ("Member", {**MEMBER, "name": 5}),
        ("Member", {**MEMBER, "tdt": {"url": "https://x"}}),
        ("ActeSubmission", {**ACTE, "nature_code": "DE"}),
        ("ActeSubmission", {**ACTE, "matieres": "7.1"}),
        ("Notification", {**NOTIFICATION, "kind": "MAYBE"}),
        ("FlowState", {**FLOW_STATE, "details": {"attempt": 3}}),
    ],
    ids=[
        "missing-name",
        "missing-timestamp",
        "int-for-string",
        "incomplete-nested-record",
        "string-for-int",
        "string-for-array",
        "unknown-enum-symbol",
        "int-in-string-map",
    ],
)
def test_invalid_record_is_a_validation_error(
    codec: AvroCodec, name: str, record: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        codec.encode(name, record)


# --- schema evolution ----------------------------------------------------------------------


MEMBER_V1 = schemas.load_schema_json("Member")
MEMBER_V2: dict[str, Any] = {
    **copy.deepcopy(MEMBER_V1),
    "fields": [
        *copy.deepcopy(MEMBER_V1["fields"]),
        {"name": "locale", "type": "string", "default": "fr-FR"},
        {"name": "email", "type": ["null", "string"], "default": None},
    ],
}


def _catalog(monkeypatch: pytest.MonkeyPatch, versions: list[dict[str, Any]]) -> SchemaCatalog:
    """A catalog whose Member schema has ``versions`` recorded, the last one current."""
    real_history = schemas.history
    real_load = schemas.load_schema_json

    def history(name: str) -> list[tuple[int, dict[str, Any]]]:
        if name == "Member":
            return list(enumerate(versions, start=1))
        return real_history(name)

    def load_schema_json(name: str) -> dict[str, Any]:
        return versions[-1] if name == "Member" else real_load(name)

    with monkeypatch.context() as patch:
        patch.setattr(schemas, "history", history)
        patch.setattr(schemas, "load_schema_json", load_schema_json)
        return SchemaCatalog()


def test_value_written_with_an_older_version_is_read_into_the_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer_v1 = AvroCodec(_catalog(monkeypatch, [MEMBER_V1]))
    reader_v2 = AvroCodec(_catalog(monkeypatch, [MEMBER_V1, MEMBER_V2]))
    assert writer_v1.catalog.current("Member").version == 1
    assert reader_v2.catalog.current("Member").version == 2

    old_value = writer_v1.encode("Member", MEMBER)
    assert old_value[2:10] == canonical_fingerprint(MEMBER_V1)
    decoded = reader_v2.decode(old_value, expected="Member")
    assert decoded.writer_version == 1
    assert decoded.record == {**MEMBER, "locale": "fr-FR", "email": None}

    new_value = reader_v2.encode("Member", {**MEMBER, "locale": "br-FR", "email": "a@b.fr"})
    assert new_value[2:10] == canonical_fingerprint(MEMBER_V2) != old_value[2:10]
    decoded_new = reader_v2.decode(new_value)
    assert decoded_new.writer_version == 2
    assert decoded_new.record["locale"] == "br-FR"


def test_a_newer_writer_than_the_reader_knows_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    writer_v2 = AvroCodec(_catalog(monkeypatch, [MEMBER_V1, MEMBER_V2]))
    reader_v1 = AvroCodec(_catalog(monkeypatch, [MEMBER_V1]))
    with pytest.raises(UnknownSchemaError):
        reader_v1.decode(writer_v2.encode("Member", MEMBER))


def test_catalog_knows_every_recorded_fingerprint(codec: AvroCodec) -> None:
    for name in schemas.schema_names():
        for version, schema_json in schemas.history(name):
            known = codec.catalog.by_fingerprint(canonical_fingerprint(schema_json))
            assert known.name == name
            assert known.version == version


@pytest.mark.parametrize("name", schemas.schema_names())
def test_the_codec_hands_fastavro_schemas_it_does_not_parse_again(
    codec: AvroCodec, name: str
) -> None:
    """fastavro re-parses, on every call, a schema without its "parsed" marker (3× the cost
    of an encode); the codec writes and reads with marked schemas, keeping the unmarked
    one for the canonical form."""
    version = codec.catalog.current(name)
    assert version.compiled.get("__fastavro_parsed") is True
    assert "__fastavro_parsed" not in version.parsed
