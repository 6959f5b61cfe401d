"""The @CTES act identifier (IDActe) and the rules on its parts.

``IDActe`` is ``DDD-SSSSSSSSS-YYYYMMDD-NUMERO-NN`` (schema attribute ``IDActe``):

- ``DDD``: department, ``[09][0-9][AB0-9]`` (034, 02A, 974). The schema's
  pattern ``[0|9]{1}[0-9]{1}[A|B|0-9]{1}`` also admits ``|`` by accident;
  Relais refuses it.
- ``SSSSSSSSS``: SIREN of the emitting body (Luhn-checked when building).
- ``YYYYMMDD``: the **decision** date of the acte.
- ``NUMERO``: numero interne, 1 to 15 of ``[A-Za-z0-9_]``.
- ``NN``: nature abbreviation (DE, AR, AI, CC, BF, AU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from relais.actes.codes import NATURE_BY_ABBREVIATION, NATURE_BY_CODE
from relais.actes.text import fold_to_latin1, latin1_reasons
from relais.errors import Reason, ValidationError
from relais.identifiers import siren_reasons

DEPARTMENT_RE = re.compile(r"[09][0-9][AB0-9]")
NUMERO_RE = re.compile(r"[A-Za-z0-9_]{1,15}")
ID_ACTE_RE = re.compile(
    r"(?P<department>[09][0-9][AB0-9])-(?P<siren>[0-9]{9})-(?P<date>[0-9]{8})"
    r"-(?P<numero>[A-Za-z0-9_]{1,15})-(?P<nature>[A-Z]{2})"
)
OBJET_MAX_LENGTH = 499


@dataclass(frozen=True)
class IdActe:
    """The parts of an IDActe; ``str()`` gives the identifier back."""

    department: str
    siren: str
    decision_date: date
    numero: str
    nature: str

    def __str__(self) -> str:
        return (
            f"{self.department}-{self.siren}-{self.decision_date:%Y%m%d}"
            f"-{self.numero}-{self.nature}"
        )

    @property
    def nature_code(self) -> int | None:
        """The numeric nature code, when the abbreviation is a known one."""
        nature = NATURE_BY_ABBREVIATION.get(self.nature)
        return nature.code if nature else None


def department_reasons(value: str, field: str = "department") -> list[Reason]:
    """Why ``value`` is not an ACTES department code (3 characters: 034, 02A, 974)."""
    if DEPARTMENT_RE.fullmatch(value) is None:
        return [
            Reason(
                field,
                "format",
                f"a department is 3 characters: 0 or 9, a digit, then a digit, A or B; "
                f"got {value!r}",
            )
        ]
    return []


def numero_reasons(value: str, field: str = "numero_interne") -> list[Reason]:
    """Why ``value`` is not a numero interne (1 to 15 of letters, digits, underscore)."""
    if NUMERO_RE.fullmatch(value) is None:
        return [
            Reason(
                field,
                "format",
                f"the numero interne is 1 to 15 ASCII letters, digits or '_'; got {value!r}",
            )
        ]
    return []


def nature_reasons(value: int | str, field: str = "nature_code") -> list[Reason]:
    """Why ``value`` is neither a known nature code (1–6) nor a known abbreviation."""
    if isinstance(value, int) and value in NATURE_BY_CODE:
        return []
    if isinstance(value, str) and value in NATURE_BY_ABBREVIATION:
        return []
    return [Reason(field, "unknown", f"unknown acte nature {value!r} (codes 1 to 6)")]


def objet_reasons(value: str, field: str = "objet") -> list[Reason]:
    """Why ``value`` is not a sendable objet: 1 to 499 characters, no line break, Latin-1.

    The check applies to the text after ``fold_to_latin1``, which is what the
    builders write.
    """
    text = fold_to_latin1(value)
    reasons: list[Reason] = []
    if not text.strip():
        reasons.append(Reason(field, "required", "the objet must not be empty"))
    elif len(text) > OBJET_MAX_LENGTH:
        reasons.append(
            Reason(
                field,
                "length",
                f"the objet is at most {OBJET_MAX_LENGTH} characters, got {len(text)}",
            )
        )
    if "\n" in text or "\r" in text:
        reasons.append(Reason(field, "newline", "the objet must fit on one line"))
    reasons.extend(latin1_reasons(text, field))
    return reasons


def _nature_abbreviation(nature: int | str) -> str:
    if isinstance(nature, int):
        return NATURE_BY_CODE[nature].abbreviation
    return nature


def id_acte_reasons(value: str, field: str = "id_acte") -> list[Reason]:
    """Why ``value`` is not a well-formed IDActe with a valid SIREN, date and nature."""
    match = ID_ACTE_RE.fullmatch(value)
    if match is None:
        return [
            Reason(
                field,
                "format",
                f"an IDActe is DDD-SIREN-YYYYMMDD-NUMERO-NN; got {value!r}",
            )
        ]
    reasons = siren_reasons(match["siren"], field)
    try:
        datetime.strptime(match["date"], "%Y%m%d")
    except ValueError:
        reasons.append(Reason(field, "date", f"{match['date']} is not a calendar date"))
    reasons.extend(nature_reasons(match["nature"], field))
    return reasons


def build_id_acte(
    department: str, siren: str, decision_date: date, numero: str, nature: int | str
) -> str:
    """The IDActe of an acte; ``nature`` is the code (1–6) or the abbreviation (DE…).

    Raises ``ValidationError`` naming each bad part.
    """
    reasons = [
        *department_reasons(department),
        *siren_reasons(siren),
        *numero_reasons(numero),
        *nature_reasons(nature),
    ]
    if reasons:
        raise ValidationError("cannot build an IDActe from these parts", reasons=reasons)
    return str(IdActe(department, siren, decision_date, numero, _nature_abbreviation(nature)))


def parse_id_acte(value: str) -> IdActe:
    """Split an IDActe into its parts (pattern and calendar date only, no Luhn check).

    Raises ``ValidationError`` when ``value`` does not have the IDActe shape.
    """
    match = ID_ACTE_RE.fullmatch(value)
    if match is None:
        raise ValidationError(
            f"not an IDActe: {value!r}",
            reasons=[Reason("id_acte", "format", "expected DDD-SIREN-YYYYMMDD-NUMERO-NN")],
        )
    try:
        decision = datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError as exc:
        raise ValidationError(
            f"IDActe {value!r} has no valid date",
            reasons=[Reason("id_acte", "date", f"{match['date']} is not a calendar date")],
        ) from exc
    return IdActe(
        department=match["department"],
        siren=match["siren"],
        decision_date=decision,
        numero=match["numero"],
        nature=match["nature"],
    )
