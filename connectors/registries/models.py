"""What a registry look-up answers: a unit (SIREN), an establishment (SIRET) or not found.

The registries mask some fields of a *partly diffusible* unit or establishment (article
R123-232 of the Code de commerce: a person may refuse the diffusion of their identity and
address). Sirene 3.11 writes ``[ND]`` in those fields; API Entreprise writes ``null`` and
says ``status_diffusion: partiellement_diffusible``. Both become ``None`` here, and the
field's name is listed in :attr:`RegistryRecord.masked`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

NOT_DIFFUSED = "[ND]"


class Registry(StrEnum):
    SIRENE = "sirene"
    ENTREPRISE = "entreprise"
    ANNUAIRE = "annuaire"


class RecordKind(StrEnum):
    UNIT = "unit"  # unité légale, a SIREN
    ESTABLISHMENT = "establishment"  # établissement, a SIRET


class Diffusion(StrEnum):
    DIFFUSIBLE = "diffusible"  # Sirene "O"
    PARTIAL = "partial"  # Sirene "P", API Entreprise "partiellement_diffusible"
    NON_DIFFUSIBLE = "non_diffusible"  # Sirene "N" (before 2023), API Entreprise 451


@dataclass(frozen=True)
class Address:
    street: str | None
    postal_code: str | None
    commune: str | None
    commune_code: str | None  # code officiel géographique (INSEE), 5 characters


@dataclass(frozen=True)
class RegistryRecord:
    """One unit or establishment as a registry describes it today."""

    registry: Registry
    kind: RecordKind
    siren: str
    siret: str | None
    name: str | None
    active: bool
    closed_on: date | None
    legal_category: str | None  # catégorie juridique, 4 digits (7210 = commune)
    naf: str | None  # activité principale, e.g. "84.11Z"
    diffusion: Diffusion
    address: Address | None
    head_office_siret: str | None = None
    head_office: bool | None = None
    masked: frozenset[str] = field(default_factory=frozenset)

    @property
    def identifier(self) -> str:
        return self.siret if self.siret is not None else self.siren


@dataclass(frozen=True)
class NotFound:
    """The registry answered that it does not know this number (HTTP 404)."""

    registry: Registry
    identifier: str
    message: str


@dataclass(frozen=True)
class AdministrationEntry:
    """One public office in the Annuaire de l'administration (DILA)."""

    name: str
    pivot: tuple[str, ...]  # kinds of office, e.g. ("mairie",)
    commune_code: str | None
    siret: str | None
    email: str | None
    phone: str | None
    website: str | None
    url_service_public: str | None
    address: Address | None
    modified: str | None


LookupResult = RegistryRecord | NotFound


def clean(value: object) -> str | None:
    """A registry string, ``None`` for null, empty or ``[ND]``."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text == NOT_DIFFUSED:
        return None
    return text
