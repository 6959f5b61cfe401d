"""SIREN and SIRET numbers: format and Luhn check digit.

A SIREN is 9 digits, a SIRET 14 (the SIREN plus a 5-digit NIC). Both end with a
Luhn check digit: from the right, every second digit is doubled (minus 9 when
the result exceeds 9) and the sum must be a multiple of 10.

Leading zeros are significant (``005520135`` is a valid SIREN): numbers are
handled as strings and never compared with their integer value.

La Poste (SIREN ``356000000``) is an exception: one of its SIRETs is also valid
when the plain sum of its 14 digits is a multiple of 5.
"""

from __future__ import annotations

from relais.errors import Reason

SIREN_LENGTH = 9
SIRET_LENGTH = 14
LA_POSTE_SIREN = "356000000"


def _is_ascii_digits(value: str) -> bool:
    return bool(value) and value.isascii() and value.isdigit()


def luhn_sum(digits: str) -> int:
    """The Luhn sum of a string of ASCII digits (the check digit is the last one)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - ord("0")
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def is_luhn_valid(digits: str) -> bool:
    """True when ``digits`` is only ASCII digits and its Luhn sum is a multiple of 10."""
    return _is_ascii_digits(digits) and luhn_sum(digits) % 10 == 0


def luhn_check_digit(payload: str) -> str:
    """The digit to append to ``payload`` so that the result passes the Luhn check."""
    if not _is_ascii_digits(payload):
        raise ValueError(f"Luhn payload must be ASCII digits, got {payload!r}")
    return str(-luhn_sum(payload + "0") % 10)


def is_valid_siren(value: str) -> bool:
    """True for 9 ASCII digits passing the Luhn check."""
    return len(value) == SIREN_LENGTH and is_luhn_valid(value)


def is_valid_siret(value: str) -> bool:
    """True for 14 ASCII digits whose SIREN is valid and that pass the Luhn check.

    La Poste's SIRETs (SIREN 356000000) are also valid when their digit sum is a
    multiple of 5.
    """
    if len(value) != SIRET_LENGTH or not _is_ascii_digits(value):
        return False
    if not is_valid_siren(value[:SIREN_LENGTH]):
        return False
    if luhn_sum(value) % 10 == 0:
        return True
    return value[:SIREN_LENGTH] == LA_POSTE_SIREN and sum(map(int, value)) % 5 == 0


def siren_reasons(value: str, field: str = "siren") -> list[Reason]:
    """Why ``value`` is not a valid SIREN (empty when it is)."""
    if len(value) != SIREN_LENGTH or not _is_ascii_digits(value):
        return [Reason(field, "format", f"a SIREN is exactly 9 digits, got {value!r}")]
    if not is_luhn_valid(value):
        return [Reason(field, "checksum", f"SIREN {value} fails the Luhn check digit")]
    return []


def siret_reasons(value: str, field: str = "siret") -> list[Reason]:
    """Why ``value`` is not a valid SIRET (empty when it is)."""
    if len(value) != SIRET_LENGTH or not _is_ascii_digits(value):
        return [Reason(field, "format", f"a SIRET is exactly 14 digits, got {value!r}")]
    if not is_valid_siren(value[:SIREN_LENGTH]):
        return [Reason(field, "checksum", f"the SIREN part of SIRET {value} is not valid")]
    if not is_valid_siret(value):
        return [Reason(field, "checksum", f"SIRET {value} fails the Luhn check digit")]
    return []


# --- Registry look-ups ------------------------------------------------------------------

_SEPARATORS = frozenset(" \u00a0\u202f.-")


def normalize_identifier(value: str) -> str:
    """``value`` without the spaces, dots and dashes people type inside a SIREN or SIRET.

    ``"214 400 152 00015"`` becomes ``"21440015200015"``; anything else (letters,
    full-width digits) is kept, so the result still fails validation when it should.
    """
    return "".join(char for char in value.strip() if char not in _SEPARATORS)


def identifier_kind(value: str) -> str | None:
    """``"siren"`` or ``"siret"`` for a valid number, ``None`` for anything else."""
    if is_valid_siren(value):
        return "siren"
    if is_valid_siret(value):
        return "siret"
    return None


def siren_of(siret: str) -> str:
    """The SIREN part (first 9 digits) of a SIRET."""
    if len(siret) != SIRET_LENGTH or not _is_ascii_digits(siret):
        raise ValueError(f"a SIRET is exactly 14 digits, got {siret!r}")
    return siret[:SIREN_LENGTH]


def make_siret(siren: str, nic_payload: str) -> str:
    """The SIRET of ``siren`` whose NIC starts with the 4 digits ``nic_payload`` (Luhn-valid)."""
    if not is_valid_siren(siren):
        raise ValueError(f"not a valid SIREN: {siren!r}")
    if len(nic_payload) != 4 or not _is_ascii_digits(nic_payload):
        raise ValueError(f"a NIC payload is exactly 4 digits, got {nic_payload!r}")
    payload = siren + nic_payload
    return payload + luhn_check_digit(payload)


def la_poste_exception_siret(nic_payload: str) -> str | None:
    """A La Poste SIRET starting with ``nic_payload`` that is valid *only* by the digit-sum rule.

    Two last digits make the digit sum a multiple of 5; the one that also fails Luhn
    is returned, or ``None`` when both pass Luhn (cannot happen: they differ by 5).
    """
    if len(nic_payload) != 4 or not _is_ascii_digits(nic_payload):
        raise ValueError(f"a NIC payload is exactly 4 digits, got {nic_payload!r}")
    payload = LA_POSTE_SIREN + nic_payload
    partial = sum(map(int, payload))
    first = -partial % 5
    for last in (first, first + 5):
        candidate = payload + str(last)
        if luhn_sum(candidate) % 10 != 0:
            return candidate
    return None
