"""Member schema v5: the contractor setting and Sirene's identity (legal category, commune)
are stored, and records written before v5 stay readable."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

import schemas
from ops.members import new_member
from relais.api.auth import hash_token
from relais.errors import ValidationError
from relais.members.directory import MemberDirectory
from relais.members.model import (
    REFUSE,
    WARN,
    Member,
    PartnerAccount,
    check_registration,
    contractor_check_reasons,
)
from relais.wire.avro_codec import SINGLE_OBJECT_MARKER, AvroCodec

DIJON = "217500016"
AT = datetime(2024, 2, 29, 8, 15, 0, 250000, tzinfo=UTC)


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _written_with(version: int, record: dict[str, Any]) -> bytes:
    """``record`` encoded as a hub on schema Member ``version`` wrote it."""
    schema = parse_schema(dict(schemas.history("Member"))[version], _write_hint=False)
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MARKER)
    buffer.write(bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")))
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def _v4_record() -> dict[str, Any]:
    return {
        "siren": DIJON, "name": "Dijon", "department": "021", "token_sha256": hash_token("t"),
        "active": True, "registered_at": AT, "retry_tiers": "30s,5m", "tdt": None,
        "accounts": {"archive": {"url": "https://vitam.example.fr", "login": "",
                                 "password_env": "", "cert_file": None, "key_file": None,
                                 "key_password_env": None, "ca_file": None,
                                 "api_key_env": None, "token_env": None,
                                 "options": {"tenant": "1"}}},
    }


def test_v5_is_the_recorded_current_version() -> None:
    version, latest = schemas.history("Member")[-1]
    assert version == 5 and latest == schemas.load_schema_json("Member")
    fields = {f["name"]: f for f in latest["fields"]}
    assert fields["contractor_check"]["default"] == WARN
    for name in ("legal_category", "commune", "commune_code"):
        assert fields[name]["type"] == ["null", "string"] and fields[name]["default"] is None


def test_a_v4_record_reads_as_warn_without_identity(codec: AvroCodec) -> None:
    decoded = codec.decode(_written_with(4, _v4_record()), expected="Member")
    assert decoded.writer_version == 4
    member = Member.from_record(decoded.record)
    assert member.contractor_check == WARN and not member.refuses_closed_contractors
    assert (member.legal_category, member.commune, member.commune_code) == (None, None, None)
    assert member.retry_tiers == "30s,5m"
    archive = member.account("archive")
    assert archive is not None and archive.option("tenant") == "1"


def test_a_v3_record_still_reads(codec: AvroCodec) -> None:
    old = {key: value for key, value in _v4_record().items() if key != "accounts"}
    member = Member.from_record(codec.decode(_written_with(3, old)).record)
    assert member.contractor_check == WARN and member.commune is None


def test_the_setting_and_identity_round_trip(codec: AvroCodec) -> None:
    member = Member(
        siren=DIJON, name="Dijon", department="021", token_sha256=hash_token("t"),
        registered_at=AT, contractor_check=REFUSE, legal_category="7210", commune="DIJON",
        commune_code="21231", accounts={"tdt": PartnerAccount(url="https://tdt.example.fr")},
    )
    record = codec.decode(codec.encode("Member", member.to_record())).record
    assert record["contractor_check"] == "refuse" and record["commune_code"] == "21231"
    back = Member.from_record(record)
    assert back == member and back.refuses_closed_contractors
    assert (back.legal_category, back.commune) == ("7210", "DIJON")


def test_the_directory_holds_the_new_fields(codec: AvroCodec) -> None:
    directory = MemberDirectory("127.0.0.1:1", codec)
    member = Member(siren=DIJON, name="Dijon", department="021", token_sha256="0" * 64,
                    registered_at=AT, contractor_check=REFUSE, commune="DIJON")
    directory.apply(DIJON.encode(), codec.encode("Member", member.to_record()))
    held = directory.get(DIJON)
    assert held is not None and held.refuses_closed_contractors and held.commune == "DIJON"


def test_replace_keeps_the_new_fields() -> None:
    member = Member(siren=DIJON, name="D", department="021", token_sha256="0" * 64,
                    contractor_check=REFUSE, legal_category="7210")
    changed = replace(member, retry_tiers="30s")
    assert changed.contractor_check == REFUSE and changed.legal_category == "7210"


def test_only_warn_and_refuse_are_settings() -> None:
    assert contractor_check_reasons(WARN) == [] and contractor_check_reasons(REFUSE) == []
    [reason] = contractor_check_reasons("reject")
    assert (reason.field, reason.code) == ("contractor_check", "invalid_choice")
    with pytest.raises(ValidationError) as refused:
        check_registration(DIJON, "Dijon", "021", "block")
    assert [r.field for r in refused.value.reasons] == ["contractor_check"]


def test_new_member_stores_the_setting_and_identity() -> None:
    registration = new_member(DIJON, "Dijon", "021", contractor_check=REFUSE,
                              legal_category="7210", commune="DIJON", commune_code="21231")
    member = registration.member
    assert member.refuses_closed_contractors
    assert (member.legal_category, member.commune, member.commune_code) == (
        "7210", "DIJON", "21231")
    assert new_member(DIJON, "Dijon", "021").member.contractor_check == WARN
    with pytest.raises(ValidationError):
        new_member(DIJON, "Dijon", "021", contractor_check="maybe")
