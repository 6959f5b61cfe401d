"""The member model and the directory's view of the registry topic (without Kafka)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form
from structlog.testing import capture_logs

import schemas
from ops.members import accounts_from_specs, new_member
from relais.api.auth import generate_token, hash_token
from relais.errors import ValidationError
from relais.members.directory import MemberDirectory
from relais.members.model import (
    Member,
    PartnerAccount,
    TdtSettings,
    account_reasons,
    accounts_reasons,
    check_registration,
    registration_reasons,
)
from relais.wire.avro_codec import SINGLE_OBJECT_MARKER, AvroCodec

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


# -- accounts per partner (schema v4) -----------------------------------------------------------


def _v3_value(record: dict[str, object]) -> bytes:
    """``record`` encoded as a hub on schema Member v3 wrote it (single-object encoding)."""
    v3 = parse_schema(dict(schemas.history("Member"))[3], _write_hint=False)
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MARKER)
    buffer.write(bytes.fromhex(fingerprint(to_parsing_canonical_form(v3), "CRC-64-AVRO")))
    schemaless_writer(buffer, v3, record)
    return buffer.getvalue()


def test_a_v3_record_with_tdt_reads_as_the_tdt_account(codec: AvroCodec) -> None:
    old = {
        "siren": DIJON, "name": "Dijon", "department": "021", "token_sha256": hash_token("t"),
        "active": True, "registered_at": AT, "retry_tiers": None,
        "tdt": {"url": "https://tdt.example.fr", "login": "dijon", "password_env": "DIJON_PW",
                "cert_file": "/etc/relais/d.pem", "key_file": None, "arrondissement": 4,
                "nature_collectivite": "32", "key_password_env": "DIJON_KEY_PW",
                "ca_file": "/etc/relais/ca.pem"},
    }
    decoded = codec.decode(_v3_value(old), expected="Member")
    assert decoded.writer_version == 3
    member = Member.from_record(decoded.record)
    account = member.account("tdt")
    assert account is not None and member.tdt == account
    assert (account.url, account.login, account.password_env) == (
        "https://tdt.example.fr", "dijon", "DIJON_PW")
    assert (account.cert_file, account.key_password_env, account.ca_file) == (
        "/etc/relais/d.pem", "DIJON_KEY_PW", "/etc/relais/ca.pem")
    assert account.options == {"arrondissement": "4", "nature_collectivite": "32"}
    assert set(member.accounts) == {"tdt"}


def test_a_v3_record_without_tdt_has_no_account(codec: AvroCodec) -> None:
    old = {"siren": LYON, "name": "Lyon", "department": "069", "token_sha256": hash_token("t"),
           "active": True, "registered_at": AT, "retry_tiers": None, "tdt": None}
    member = Member.from_record(codec.decode(_v3_value(old)).record)
    assert member.accounts == {}
    assert member.tdt is None and member.account("archive") is None


def test_accounts_of_several_partners_round_trip_with_options(codec: AvroCodec) -> None:
    member = Member(
        siren=DIJON, name="Dijon", department="021", token_sha256=hash_token("t"),
        registered_at=AT,
        accounts={
            "tdt": TdtSettings(url="https://tdt.example.fr", login="d", password_env="PW"),
            "archive": PartnerAccount(url="https://vitam.example.fr", cert_file="/c.pem",
                                      options={"tenant": "1"}),
            "sirene": PartnerAccount(url="https://api.insee.fr", api_key_env="INSEE_KEY"),
            "entreprise": PartnerAccount(url="https://entreprise.api.gouv.fr",
                                         token_env="API_ENTREPRISE_TOKEN"),
        },
    )
    record = codec.decode(codec.encode("Member", member.to_record())).record
    # readers still on v3 find the TdT account in the former field
    assert record["tdt"]["url"] == "https://tdt.example.fr"
    assert record["accounts"]["archive"]["options"] == {"tenant": "1"}
    back = Member.from_record(record)
    assert back == member
    archive = back.account("archive")
    assert archive is not None and archive.option("tenant") == "1"
    sirene = back.account("sirene")
    assert sirene is not None and sirene.api_key_env == "INSEE_KEY"


def test_the_accounts_record_wins_over_the_former_tdt_field() -> None:
    member = Member(siren=DIJON, name="D", department="021", token_sha256="0" * 64,
                    registered_at=AT,
                    accounts={"tdt": PartnerAccount(url="https://new.example.fr")})
    record = member.to_record()
    record["tdt"] = {**record["tdt"], "url": "https://old.example.fr"}
    tdt = Member.from_record(record).tdt
    assert tdt is not None and tdt.url == "https://new.example.fr"


def test_replace_keeps_the_accounts() -> None:
    member = Member(siren=DIJON, name="D", department="021", token_sha256="0" * 64,
                    tdt=PartnerAccount(url="https://tdt.example.fr"))
    changed = replace(member, retry_tiers="30s,5m")
    assert changed.tdt == member.tdt and changed.retry_tiers == "30s,5m"


def test_account_reasons_name_the_partner_and_never_echo_a_secret() -> None:
    account = PartnerAccount(url="ftp://x", api_key_env="abc def secret", token_env="T",
                             options={"bad key!": "v", "tenant": "x" * 2000})
    reasons = account_reasons("sirene", account)
    assert {(r.field, r.code) for r in reasons} == {
        ("sirene.url", "invalid_url"),
        ("sirene.api_key_env", "invalid_env_name"),
        ("sirene.options", "invalid_option_key"),
        ("sirene.options.tenant", "too_long"),
    }
    assert all("secret" not in r.message for r in reasons)
    assert [r.code for r in accounts_reasons({"Bad Name": PartnerAccount(url="https://x")})] == [
        "invalid_partner"]
    assert accounts_reasons({"archive": PartnerAccount(url="https://x", cert_file="/c")}) == []


def test_account_specs_fill_settings_and_options() -> None:
    accounts = accounts_from_specs(
        ["archive=https://vitam.example.org", "sirene=https://api.insee.fr/entreprises/sirene"],
        ["archive.cert_file=/etc/relais/a.pem", "archive.tenant=1",
         "sirene.api_key_env=INSEE_KEY", "sirene.timeout.read=20"],
    )
    assert accounts["archive"] == PartnerAccount(url="https://vitam.example.org",
                                                 cert_file="/etc/relais/a.pem",
                                                 options={"tenant": "1"})
    assert accounts["sirene"].api_key_env == "INSEE_KEY"
    assert accounts["sirene"].options == {"timeout.read": "20"}


@pytest.mark.parametrize(
    ("specs", "options", "reason"),
    [
        (["archive"], [], "partner=url"),
        (["a=https://x", "a=https://y"], [], "twice"),
        (["a=https://x"], ["a-tenant=1"], "partner.key=value"),
        ([], ["archive.tenant=1"], "no --account archive=url"),
    ],
)
def test_malformed_account_specs_are_refused(
    specs: list[str], options: list[str], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        accounts_from_specs(specs, options)


def test_new_member_takes_accounts_and_the_tdt_shorthand() -> None:
    tdt = TdtSettings(url="https://tdt.example.fr", login="d", password_env="PW")
    archive = PartnerAccount(url="https://vitam.example.org")
    member = new_member(DIJON, "Dijon", "021", tdt=tdt, accounts={"archive": archive}).member
    assert member.tdt == tdt and member.account("archive") == archive
    with pytest.raises(ValueError, match="twice"):
        new_member(DIJON, "Dijon", "021", tdt=tdt, accounts={"tdt": tdt})
