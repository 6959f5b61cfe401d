"""The member model and the directory's view of the registry topic (without Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from relais.api.auth import generate_token, hash_token
from relais.errors import ValidationError
from relais.members.directory import MemberDirectory
from relais.members.model import (
    Member,
    TdtSettings,
    check_registration,
    registration_reasons,
)
from relais.wire.avro_codec import AvroCodec

DIJON = "217500016"
LYON = "200066389"
AT = datetime(2024, 2, 29, 8, 15, 0, 250000, tzinfo=UTC)


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


@pytest.fixture
def directory(codec: AvroCodec) -> MemberDirectory:
    return MemberDirectory("127.0.0.1:1", codec)


def _member(siren: str, token: str, *, active: bool = True, name: str = "Commune") -> Member:
    return Member(
        siren=siren,
        name=name,
        department="021",
        token_sha256=hash_token(token),
        active=active,
        registered_at=AT,
    )


def _apply(directory: MemberDirectory, codec: AvroCodec, member: Member) -> None:
    directory.apply(member.siren.encode(), codec.encode("Member", member.to_record()))


# --- apply ---------------------------------------------------------------------------------


def test_apply_adds_members(directory: MemberDirectory, codec: AvroCodec) -> None:
    dijon, lyon = _member(DIJON, "t1", name="Dijon"), _member(LYON, "t2", name="Lyon")
    _apply(directory, codec, dijon)
    _apply(directory, codec, lyon)
    assert len(directory) == 2
    assert directory.get(DIJON) == dijon
    assert directory.get(LYON) == lyon
    assert [m.siren for m in directory.all()] == sorted([DIJON, LYON])
    assert directory.get("000000000") is None


def test_a_later_record_replaces_the_member(directory: MemberDirectory, codec: AvroCodec) -> None:
    _apply(directory, codec, _member(DIJON, "t1", name="Dijon"))
    _apply(directory, codec, _member(DIJON, "t1", name="Ville de Dijon"))
    assert len(directory) == 1
    member = directory.get(DIJON)
    assert member is not None and member.name == "Ville de Dijon"


def test_tombstone_removes_the_member(directory: MemberDirectory, codec: AvroCodec) -> None:
    _apply(directory, codec, _member(DIJON, "t1"))
    _apply(directory, codec, _member(LYON, "t2"))
    directory.apply(DIJON.encode(), None)
    assert directory.get(DIJON) is None
    assert len(directory) == 1
    directory.apply(b"123456782", None)  # a tombstone for nobody is harmless
    assert len(directory) == 1


def test_record_without_key_is_ignored(directory: MemberDirectory, codec: AvroCodec) -> None:
    directory.apply(None, codec.encode("Member", _member(DIJON, "t1").to_record()))
    assert len(directory) == 0


def test_unreadable_record_is_logged_and_skipped(
    directory: MemberDirectory, codec: AvroCodec
) -> None:
    _apply(directory, codec, _member(DIJON, "t1"))
    notification = codec.encode(
        "FlowState",
        {
            "flow_id": "f",
            "flow_type": "acte",
            "member_siren": DIJON,
            "state": "received",
            "stage": "ingress",
            "sequence": 1,
            "occurred_at": AT,
        },
    )
    with capture_logs() as logs:
        directory.apply(DIJON.encode(), b"not avro")
        directory.apply(DIJON.encode(), notification)  # a known schema, but not a Member
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 2
    assert all("unreadable" in e["event"] for e in errors)
    assert all(DIJON in (e.get("siren"), e.get("key")) for e in errors)
    assert directory.get(DIJON) is not None  # the last good record still stands


def test_get_hides_inactive_members(directory: MemberDirectory, codec: AvroCodec) -> None:
    _apply(directory, codec, _member(DIJON, "t1", active=False))
    assert directory.get(DIJON) is None
    assert len(directory) == 1
    assert [m.siren for m in directory.all()] == [DIJON]
    _apply(directory, codec, _member(DIJON, "t1", active=True))
    assert directory.get(DIJON) is not None


# --- authenticate --------------------------------------------------------------------------


async def test_authenticate_finds_the_member_by_token(
    directory: MemberDirectory, codec: AvroCodec
) -> None:
    dijon_token, lyon_token = generate_token(), generate_token()
    _apply(directory, codec, _member(DIJON, dijon_token))
    _apply(directory, codec, _member(LYON, lyon_token))
    assert await directory.authenticate(dijon_token) == DIJON
    assert await directory.authenticate(lyon_token) == LYON


async def test_authenticate_refuses_a_wrong_token(
    directory: MemberDirectory, codec: AvroCodec
) -> None:
    token = generate_token()
    _apply(directory, codec, _member(DIJON, token))
    assert await directory.authenticate(generate_token()) is None
    assert await directory.authenticate(token[:-1]) is None
    assert await directory.authenticate("") is None
    assert await directory.authenticate(hash_token(token)) is None  # the hash is not the token


async def test_authenticate_refuses_inactive_and_removed_members(
    directory: MemberDirectory, codec: AvroCodec
) -> None:
    token = generate_token()
    _apply(directory, codec, _member(DIJON, token, active=False))
    assert await directory.authenticate(token) is None
    _apply(directory, codec, _member(DIJON, token))
    assert await directory.authenticate(token) == DIJON
    directory.apply(DIJON.encode(), None)
    assert await directory.authenticate(token) is None


# --- registration rules --------------------------------------------------------------------


def test_valid_registration_has_no_reasons() -> None:
    assert registration_reasons(DIJON, "Commune de Dijon", "021") == []
    assert registration_reasons(LYON, "Métropole de Lyon", "069") == []
    assert registration_reasons(DIJON, "Ajaccio", "02A") == []
    assert registration_reasons(DIJON, "Saint-Denis", "974") == []
    check_registration(DIJON, "Commune de Dijon", "021")


@pytest.mark.parametrize("siren", ["217500017", "21750001", "2175000160", "21750001a", ""])
def test_invalid_siren_is_refused(siren: str) -> None:
    reasons = registration_reasons(siren, "Commune", "021")
    assert [(r.field, r.code) for r in reasons] == [("siren", "invalid_siren")]


@pytest.mark.parametrize("department", ["21", "0210", "2A", "02C", "121", "abc", "", "02a"])
def test_bad_department_is_refused(department: str) -> None:
    reasons = registration_reasons(DIJON, "Commune", department)
    assert [(r.field, r.code) for r in reasons] == [("department", "invalid_department")]


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_name_is_refused(name: str) -> None:
    reasons = registration_reasons(DIJON, name, "021")
    assert [(r.field, r.code) for r in reasons] == [("name", "required")]


def test_every_reason_at_once_and_check_raises() -> None:
    with pytest.raises(ValidationError) as raised:
        check_registration("123", "", "1")
    assert [r.field for r in raised.value.reasons] == ["siren", "name", "department"]


# --- records -------------------------------------------------------------------------------


def test_member_record_round_trip_with_tdt_settings(codec: AvroCodec) -> None:
    member = Member(
        siren=DIJON,
        name="Commune de Dijon",
        department="021",
        token_sha256=hash_token("t1"),
        active=True,
        registered_at=AT,
        tdt=TdtSettings(
            url="https://tdt.example.fr/modules/actes/",
            login="dijon",
            password_env="RELAIS_TDT_PASSWORD_DIJON",
            cert_file="/etc/relais/dijon.pem",
            key_file="/etc/relais/dijon.key",
            arrondissement=3,
            nature_collectivite="32",
        ),
    )
    decoded = codec.decode(codec.encode("Member", member.to_record()), expected="Member")
    assert Member.from_record(decoded.record) == member


def test_member_record_round_trip_with_tdt_defaults(codec: AvroCodec) -> None:
    member = Member(
        siren=LYON,
        name="Lyon",
        department="069",
        token_sha256=hash_token("t2"),
        active=False,
        registered_at=AT,
        tdt=TdtSettings(url="https://tdt", login="lyon", password_env="LYON_PW"),
    )
    decoded = codec.decode(codec.encode("Member", member.to_record())).record
    assert decoded["tdt"]["arrondissement"] == 1
    assert decoded["tdt"]["cert_file"] is None
    assert Member.from_record(decoded) == member


def test_member_record_round_trip_without_tdt(codec: AvroCodec) -> None:
    member = _member(DIJON, "t1")
    record = codec.decode(codec.encode("Member", member.to_record())).record
    assert record["tdt"] is None
    assert Member.from_record(record) == member


def test_member_record_never_holds_the_token(codec: AvroCodec) -> None:
    token = generate_token()
    value = codec.encode("Member", _member(DIJON, token).to_record())
    assert token.encode() not in value
    assert hash_token(token).encode() in value
