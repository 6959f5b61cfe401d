"""Identifier helpers used by the registry look-ups: normalising, kinds, building SIRETs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relais.identifiers import (
    LA_POSTE_SIREN,
    identifier_kind,
    is_luhn_valid,
    is_valid_siren,
    is_valid_siret,
    la_poste_exception_siret,
    luhn_check_digit,
    make_siret,
    normalize_identifier,
    siren_of,
)

digits = st.text(alphabet="0123456789", min_size=4, max_size=4)
valid_sirens = st.text(alphabet="0123456789", min_size=8, max_size=8).map(
    lambda p: p + luhn_check_digit(p)
)


@given(valid_sirens, digits)
def test_make_siret_is_valid_and_keeps_its_siren(siren: str, nic: str) -> None:
    siret = make_siret(siren, nic)
    assert is_valid_siret(siret)
    assert siren_of(siret) == siren
    assert identifier_kind(siret) == "siret"
    assert identifier_kind(siren) == "siren"


@given(digits)
def test_la_poste_exception_numbers_are_valid_only_by_the_digit_sum(nic: str) -> None:
    siret = la_poste_exception_siret(nic)
    assert siret is not None
    assert siret.startswith(LA_POSTE_SIREN) and len(siret) == 14
    assert not is_luhn_valid(siret)
    assert sum(map(int, siret)) % 5 == 0
    assert is_valid_siret(siret)


@given(valid_sirens.filter(lambda s: s != LA_POSTE_SIREN), digits, st.integers(0, 9))
def test_the_same_digit_sum_never_saves_another_siren(siren: str, nic: str, last: int) -> None:
    siret = siren + nic + str(last)
    assert is_valid_siret(siret) is is_luhn_valid(siret)


@given(valid_sirens, digits, st.lists(st.sampled_from([" ", "\u00a0", ".", "-"]), max_size=4))
def test_typed_separators_are_removed(siren: str, nic: str, separators: list[str]) -> None:
    siret = make_siret(siren, nic)
    typed = siret[:3]
    for index, separator in enumerate(separators):
        typed += separator + siret[3 + index * 2 : 5 + index * 2]
    typed += siret[3 + len(separators) * 2 :]
    assert normalize_identifier(f"  {typed} ") == siret


def test_known_examples_and_refusals() -> None:
    # 35600000049837 (the example in the rule) and 35600000049832 both fail Luhn, sum 45 / 40
    assert la_poste_exception_siret("4983") in {"35600000049832", "35600000049837"}
    assert normalize_identifier("214 400 152") == "214400152"
    assert is_valid_siren(normalize_identifier("005 520 135"))
    assert identifier_kind("005520135") == "siren"
    assert identifier_kind("21440015") is None
    assert identifier_kind("２１４４００１５２") is None
    assert normalize_identifier("２１４ 400") == "２１４400"  # full-width digits stay, fail later
    with pytest.raises(ValueError):
        siren_of("214400152")
    with pytest.raises(ValueError):
        make_siret("214400153", "0001")
    with pytest.raises(ValueError):
        make_siret("214400152", "01")
    with pytest.raises(ValueError):
        la_poste_exception_siret("49a3")
