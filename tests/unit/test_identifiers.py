"""SIREN / SIRET check digits and the IDActe rules, with property tests."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relais.actes.ids import (
    build_id_acte,
    department_reasons,
    id_acte_reasons,
    numero_reasons,
    objet_reasons,
    parse_id_acte,
)
from relais.actes.metadata import ActeMetadata
from relais.errors import ValidationError
from relais.identifiers import (
    is_valid_siren,
    is_valid_siret,
    luhn_check_digit,
    luhn_sum,
    siren_reasons,
    siret_reasons,
)


def with_check_digit(payload: str) -> str:
    return payload + luhn_check_digit(payload)


valid_sirens = st.text(alphabet="0123456789", min_size=8, max_size=8).map(with_check_digit)
departments = st.from_regex(r"[09][0-9][AB0-9]", fullmatch=True)
numeros = st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True)
natures = st.sampled_from(["DE", "AR", "AI", "CC", "BF", "AU"])


# --- SIREN -----------------------------------------------------------------------------


@given(valid_sirens)
def test_luhn_valid_nine_digits_are_valid_sirens(siren: str) -> None:
    assert is_valid_siren(siren)
    assert siren_reasons(siren) == []


@given(st.text(alphabet="0123456789", min_size=6, max_size=6).map(lambda p: "00" + p))
def test_leading_zeros_are_kept_and_valid(payload: str) -> None:
    siren = with_check_digit(payload)
    assert siren.startswith("00") and len(siren) == 9
    assert is_valid_siren(siren)


@given(valid_sirens, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_changing_any_one_digit_breaks_the_siren(siren: str, position: int, shift: int) -> None:
    changed = (int(siren[position]) + shift) % 10
    mutated = siren[:position] + str(changed) + siren[position + 1 :]
    assert mutated != siren
    assert not is_valid_siren(mutated)
    assert [r.code for r in siren_reasons(mutated)] == ["checksum"]


def test_known_sirens() -> None:
    assert is_valid_siren("005520135")  # a leading zero; S²LOW's int comparison rejects it
    assert is_valid_siren("214400152")
    assert not is_valid_siren("214400153")
    assert not is_valid_siren("21440015")  # too short
    assert not is_valid_siren("２１４４００１５２")  # full-width digits are not ASCII digits
    assert [r.code for r in siren_reasons("12345678a", "member.siren")] == ["format"]
    assert siren_reasons("12345678a", "member.siren")[0].field == "member.siren"


# --- SIRET -----------------------------------------------------------------------------


@given(valid_sirens, st.text(alphabet="0123456789", min_size=4, max_size=4))
def test_siret_of_valid_siren_with_check_digit_is_valid(siren: str, nic: str) -> None:
    siret = with_check_digit(siren + nic)
    assert is_valid_siret(siret)
    assert siret_reasons(siret) == []


def test_la_poste_siret_rule() -> None:
    assert is_valid_siret("35600000049837")  # fails Luhn, digit sum 45 is a multiple of 5
    assert is_valid_siret("35600000000048")  # the head office passes Luhn normally
    assert not is_valid_siret("35600000049838")  # digit sum 46


@given(valid_sirens, st.text(alphabet="0123456789", min_size=5, max_size=5))
def test_the_digit_sum_rule_is_only_for_la_poste(siren: str, nic: str) -> None:
    siret = siren + nic
    luhn_ok = luhn_sum(siret) % 10 == 0
    sum_ok = sum(map(int, siret)) % 5 == 0
    expected = luhn_ok or (siren == "356000000" and sum_ok)
    assert is_valid_siret(siret) is expected


def test_siret_needs_a_valid_siren() -> None:
    # Luhn-valid as 14 digits, but its first 9 digits are not a valid SIREN.
    payload = "1234567800001"
    siret = with_check_digit(payload)
    assert not is_valid_siren(siret[:9])
    assert not is_valid_siret(siret)
    assert siret_reasons(siret)[0].code == "checksum"


# --- IDActe ----------------------------------------------------------------------------


@given(
    departments,
    valid_sirens,
    st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)),
    numeros,
    natures,
)
def test_id_acte_build_parse_round_trip(
    department: str, siren: str, decision: date, numero: str, nature: str
) -> None:
    id_acte = build_id_acte(department, siren, decision, numero, nature)
    assert id_acte_reasons(id_acte) == []
    parts = parse_id_acte(id_acte)
    assert (parts.department, parts.siren, parts.decision_date, parts.numero, parts.nature) == (
        department,
        siren,
        decision,
        numero,
        nature,
    )
    assert str(parts) == id_acte


def test_id_acte_from_nature_code_and_sample_shape() -> None:
    assert (
        build_id_acte("006", "210600235", date(2018, 5, 22), "684", 3)
        == "006-210600235-20180522-684-AI"
    )
    assert parse_id_acte("034-000000000-20170701-20170725A-AI").nature_code == 3


_NUMERO_CHARS = set(string.ascii_letters + string.digits + "_")


@given(st.text(min_size=1, max_size=20).filter(lambda s: any(c not in _NUMERO_CHARS for c in s)))
def test_numero_with_a_forbidden_character_is_refused(numero: str) -> None:
    reasons = numero_reasons(numero)
    assert [(r.field, r.code) for r in reasons] == [("numero_interne", "format")]


def test_numero_length_and_build_reasons() -> None:
    assert numero_reasons("A" * 15) == []
    assert numero_reasons("A" * 16)[0].field == "numero_interne"
    assert numero_reasons("")[0].code == "format"
    with pytest.raises(ValidationError) as caught:
        build_id_acte("0|4", "214400153", date(2020, 1, 1), "N-1", "XX")
    assert {r.field for r in caught.value.reasons} == {
        "department",
        "siren",
        "numero_interne",
        "nature_code",
    }


def test_parse_refuses_malformed_id_acte() -> None:
    with pytest.raises(ValidationError):
        parse_id_acte("044-214400152-20181301-123-DE")  # month 13
    with pytest.raises(ValidationError):
        parse_id_acte("44-214400152-20181001-123-DE")
    assert id_acte_reasons("044-214400153-20181001-123-DE")[0].code == "checksum"


def test_department_rule() -> None:
    for good in ("034", "02A", "02B", "974", "001"):
        assert department_reasons(good) == [], good
    for bad in ("34", "2A", "100", "0|4", "9C4", "0344"):
        assert department_reasons(bad)[0].field == "department", bad


# --- Objet -----------------------------------------------------------------------------

latin1_one_line = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    min_size=1,
    max_size=499,
).filter(lambda s: s.strip() != "")


@given(latin1_one_line)
def test_any_one_line_latin1_objet_up_to_499_is_accepted(objet: str) -> None:
    assert objet_reasons(objet) == []


@given(
    st.text(min_size=0, max_size=30),
    st.sampled_from(["\n", "\r", "\r\n"]),
    st.text(min_size=0, max_size=30),
)
def test_objet_with_a_line_break_is_refused(before: str, newline: str, after: str) -> None:
    reasons = objet_reasons(before + newline + after, "acte.objet")
    assert ("acte.objet", "newline") in {(r.field, r.code) for r in reasons}


def test_objet_limits_and_charset() -> None:
    assert objet_reasons("a" * 499) == []
    assert [r.code for r in objet_reasons("a" * 500)] == ["length"]
    assert [r.code for r in objet_reasons("   ")] == ["required"]
    assert objet_reasons("Travaux de l'œuvre – tranche 2") == []  # folded to Latin-1
    assert [(r.field, r.code) for r in objet_reasons("Jumelage 漢字")] == [("objet", "charset")]


def test_acte_metadata_reasons_name_each_field() -> None:
    meta = ActeMetadata(
        siren="214400153",
        department="44",
        decision_date=date(2024, 1, 2),
        numero_interne="2024-01",
        nature_code=7,
        matieres=(1,),
        objet="line\nbreak",
        classification_date=date(2023, 1, 1),
        document_papier=False,
        main_file="",
        annex_files=("a/b.pdf",),
        main_typology="99-DE",
        annex_typologies=("X", "Y"),
    )
    fields = {r.field for r in meta.reasons()}
    assert fields == {
        "siren",
        "department",
        "numero_interne",
        "nature_code",
        "objet",
        "matieres",
        "main_file",
        "annex_files[0]",
        "main_typology",
        "annex_typologies",
    }
