"""What a collectivité declares about an acte it transmits (the 1-1 ``Acte``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from relais.actes.codes import NATURE_BY_CODE, NatureActe
from relais.actes.ids import (
    build_id_acte,
    department_reasons,
    id_acte_reasons,
    nature_reasons,
    numero_reasons,
    objet_reasons,
)
from relais.actes.text import latin1_reasons
from relais.errors import Reason
from relais.identifiers import siren_reasons

# STELA's fallback when no typology is chosen for a file.
DEFAULT_TYPOLOGY = "CO_DE"
TYPOLOGY_RE = re.compile(r"[A-Za-z0-9_]{1,32}")
MIN_MATIERE_LEVELS = 2
MAX_MATIERE_LEVELS = 5


@dataclass(frozen=True)
class ActeMetadata:
    """An acte as transmitted: who, when, which number, nature, matières, objet, files.

    ``main_file`` and ``annex_files`` are the file names written in the ``Acte``
    XML. ``build_transmission`` takes the uploaded names and replaces them by
    the names a TdT lays out (``{typology}-{base}_{n}.{ext}``).

    ``main_typology`` and ``annex_typologies`` are the typology codes
    (``TypePJNatureActe/@CodeTypePJ`` of the classification) of each file; an
    annex without a code gets ``DEFAULT_TYPOLOGY``.
    """

    siren: str
    department: str
    decision_date: date
    numero_interne: str
    nature_code: int
    matieres: tuple[int, ...]
    objet: str
    classification_date: date
    document_papier: bool
    main_file: str
    annex_files: tuple[str, ...] = ()
    main_typology: str = DEFAULT_TYPOLOGY
    annex_typologies: tuple[str, ...] = ()
    precedent_id_acte: str | None = None

    @property
    def nature(self) -> NatureActe:
        """The nature entry of ``nature_code`` (KeyError when unknown)."""
        return NATURE_BY_CODE[self.nature_code]

    @property
    def id_acte(self) -> str:
        """``DDD-SIREN-YYYYMMDD-NUMERO-NN`` (ValidationError when a part is bad)."""
        return build_id_acte(
            self.department, self.siren, self.decision_date, self.numero_interne, self.nature_code
        )

    def annex_typology(self, index: int) -> str:
        """The typology code of annex ``index`` (``DEFAULT_TYPOLOGY`` when not given)."""
        if index < len(self.annex_typologies) and self.annex_typologies[index]:
            return self.annex_typologies[index]
        return DEFAULT_TYPOLOGY

    def reasons(self) -> list[Reason]:
        """Every rule this metadata breaks (empty when it can be transmitted)."""
        reasons = [
            *siren_reasons(self.siren),
            *department_reasons(self.department),
            *numero_reasons(self.numero_interne),
            *nature_reasons(self.nature_code),
            *objet_reasons(self.objet),
            *_matieres_reasons(self.matieres),
            *_file_reasons("main_file", self.main_file),
            *_typology_reasons("main_typology", self.main_typology),
        ]
        for i, name in enumerate(self.annex_files):
            reasons.extend(_file_reasons(f"annex_files[{i}]", name))
        if len(self.annex_typologies) > len(self.annex_files):
            reasons.append(
                Reason(
                    "annex_typologies",
                    "count",
                    f"{len(self.annex_typologies)} typologies for {len(self.annex_files)} annexes",
                )
            )
        for i, code in enumerate(self.annex_typologies):
            reasons.extend(_typology_reasons(f"annex_typologies[{i}]", code))
        if self.precedent_id_acte is not None:
            reasons.extend(id_acte_reasons(self.precedent_id_acte, "precedent_id_acte"))
        return reasons


def _matieres_reasons(matieres: tuple[int, ...]) -> list[Reason]:
    if not MIN_MATIERE_LEVELS <= len(matieres) <= MAX_MATIERE_LEVELS:
        return [
            Reason(
                "matieres",
                "levels",
                f"an acte has 2 to 5 matière levels, got {len(matieres)}",
            )
        ]
    return [
        Reason(f"matieres[{i}]", "range", f"a matière code is a positive integer, got {code}")
        for i, code in enumerate(matieres)
        if code < 1
    ]


def _file_reasons(field: str, name: str) -> list[Reason]:
    if not name.strip():
        return [Reason(field, "required", "a file name is required")]
    if "/" in name or "\\" in name or name in {".", ".."}:
        return [Reason(field, "format", f"a file name has no directory part, got {name!r}")]
    return latin1_reasons(name, field)


def _typology_reasons(field: str, code: str) -> list[Reason]:
    if TYPOLOGY_RE.fullmatch(code) is None:
        return [
            Reason(
                field,
                "format",
                f"a typology code is 1 to 32 letters, digits or '_', got {code!r}",
            )
        ]
    return []
