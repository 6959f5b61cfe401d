"""API Entreprise v3 (DINUM): the INSEE units and establishments as administrations see them.

Facts (``docs/sandbox-registries.md``): base ``https://entreprise.api.gouv.fr``,
``GET /v3/insee/sirene/unites_legales/{siren}`` and ``…/etablissements/{siret}``,
``Authorization: Bearer <token>``, and three mandatory query parameters on every call:
``context`` (why), ``recipient`` (SIRET of the administration served) and ``object``.
Answers are ``{"data": {…}, "links": {…}, "meta": {"date_derniere_mise_a_jour": …}}``;
failures ``{"errors": [{"code", "title", "detail", "source", "meta"}]}``. A unit is ``A``
or ``C``, an establishment ``A`` or ``F``; ``status_diffusion`` is ``diffusible``,
``partiellement_diffusible`` or ``non_diffusible``. 404: not found; 422: a parameter
is malformed or missing; 451: non-diffusible; 429: rate limit; 502/503/504: provider
failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx

from connectors.registries.errors import RegistryNotDiffusibleError, status_error
from connectors.registries.http import Answer, as_dict, as_list, get_json
from connectors.registries.lookup import UnitOrEstablishmentLookup
from connectors.registries.models import (
    Address,
    Diffusion,
    LookupResult,
    NotFound,
    RecordKind,
    Registry,
    RegistryRecord,
    clean,
)
from relais.errors import ConfigurationError, PartnerReplyError
from relais.identifiers import is_valid_siret

ENTREPRISE_BASE_URL = "https://entreprise.api.gouv.fr"
PARTNER = Registry.ENTREPRISE.value


def entreprise_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class CallContext:
    """The three parameters API Entreprise requires on every call."""

    context: str
    recipient: str  # SIRET of the administration on whose behalf the call is made
    object: str

    def __post_init__(self) -> None:
        if not self.context.strip() or not self.object.strip():
            raise ConfigurationError("API Entreprise: context and object must not be empty")
        if not is_valid_siret(self.recipient):
            raise ConfigurationError(
                f"API Entreprise: recipient must be a valid SIRET, got {self.recipient!r}"
            )

    def params(self) -> dict[str, str]:
        return {"context": self.context, "recipient": self.recipient, "object": self.object}


class EntrepriseConnector(UnitOrEstablishmentLookup):
    """Look up units and establishments through API Entreprise; the client carries the token."""

    def __init__(self, client: httpx.AsyncClient, call: CallContext) -> None:
        self._client = client
        self._call = call

    async def unit(self, siren: str) -> LookupResult:
        return await self._read("unites_legales", siren, parse_unit)

    async def establishment(self, siret: str) -> LookupResult:
        return await self._read("etablissements", siret, parse_establishment)

    async def _read(self, resource: str, number: str,
                    parse: Callable[[object], LookupResult]) -> LookupResult:
        what = f"{resource} {number}"
        answer = await get_json(self._client, PARTNER, f"/v3/insee/sirene/{resource}/{number}",
                                params=self._call.params(), what=what)
        if answer.status == 200:
            return parse(answer.body)
        return _not_found_or_raise(answer, number, what)


def errors_text(body: object) -> str:
    """``title: detail`` of each entry of ``errors`` (at most 500 characters)."""
    parts = []
    for entry in as_list(as_dict(body).get("errors")):
        row = as_dict(entry)
        title, detail = clean(row.get("title")), clean(row.get("detail"))
        parts.append(": ".join(p for p in (title, detail) if p))
    return "; ".join(p for p in parts if p)[:500]


def _not_found_or_raise(answer: Answer, identifier: str, what: str) -> NotFound:
    message = errors_text(answer.body)
    if answer.status == 404:
        return NotFound(Registry.ENTREPRISE, identifier, message or "not found")
    if answer.status == 451:
        raise RegistryNotDiffusibleError(
            f"entreprise: {what}: {message or 'non diffusible'}", partner=PARTNER, status=451
        )
    raise status_error(PARTNER, what, answer.status, message, answer.header("Retry-After"))


def _diffusion(value: object) -> Diffusion:
    if value == "partiellement_diffusible":
        return Diffusion.PARTIAL
    if value == "non_diffusible":
        return Diffusion.NON_DIFFUSIBLE
    return Diffusion.DIFFUSIBLE


def _timestamp_date(value: object) -> date | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).date()
    return None


def _code(value: object) -> str | None:
    return clean(as_dict(value).get("code"))


def _name(unit: dict[str, object]) -> str | None:
    moral = as_dict(unit.get("personne_morale_attributs"))
    name = clean(moral.get("raison_sociale"))
    if name is not None:
        return name
    person = as_dict(unit.get("personne_physique_attributs"))
    parts = [clean(person.get("prenom_usuel")), clean(person.get("nom_usage"))]
    if parts[1] is None:
        parts[1] = clean(person.get("nom_naissance"))
    return " ".join(p for p in parts if p) or None


def _data(body: object, what: str) -> dict[str, object]:
    data = as_dict(body).get("data")
    if not isinstance(data, dict):
        raise PartnerReplyError(f"entreprise: {what} answer has no 'data' object", partner=PARTNER)
    return data


def _masked(diffusion: Diffusion, fields: dict[str, object | None]) -> frozenset[str]:
    if diffusion is not Diffusion.PARTIAL:
        return frozenset()
    return frozenset(name for name, value in fields.items() if value is None)


def parse_unit(body: object) -> RegistryRecord:
    data = _data(body, "unites_legales")
    siren = str(data.get("siren") or "")
    if not siren.isdigit() or len(siren) != 9:
        raise PartnerReplyError("entreprise: unit answer without a siren", partner=PARTNER)
    active = data.get("etat_administratif") != "C"
    diffusion = _diffusion(data.get("status_diffusion"))
    name = _name(data)
    return RegistryRecord(
        registry=Registry.ENTREPRISE,
        kind=RecordKind.UNIT,
        siren=siren,
        siret=None,
        name=name,
        active=active,
        closed_on=None if active else _timestamp_date(data.get("date_cessation")),
        legal_category=_code(data.get("forme_juridique")),
        naf=_code(data.get("activite_principale")),
        diffusion=diffusion,
        address=None,
        head_office_siret=clean(data.get("siret_siege_social")),
        masked=_masked(diffusion, {"name": name}),
    )


def parse_establishment(body: object) -> RegistryRecord:
    data = _data(body, "etablissements")
    siret = str(data.get("siret") or "")
    if not siret.isdigit() or len(siret) != 14:
        raise PartnerReplyError("entreprise: establishment answer without a siret", partner=PARTNER)
    unit = as_dict(data.get("unite_legale"))
    raw = as_dict(data.get("adresse"))
    active = data.get("etat_administratif") != "F"
    diffusion = _diffusion(data.get("status_diffusion"))
    street = " ".join(
        p for p in (clean(raw.get(k)) for k in ("numero_voie", "type_voie", "libelle_voie")) if p
    )
    address = Address(
        street=street or None,
        postal_code=clean(raw.get("code_postal")),
        commune=clean(raw.get("libelle_commune")),
        commune_code=clean(raw.get("code_commune")),
    )
    name = clean(data.get("enseigne")) or _name(unit)
    return RegistryRecord(
        registry=Registry.ENTREPRISE,
        kind=RecordKind.ESTABLISHMENT,
        siren=siret[:9],
        siret=siret,
        name=name,
        active=active,
        closed_on=None if active else _timestamp_date(data.get("date_fermeture")),
        legal_category=_code(unit.get("forme_juridique")),
        naf=_code(data.get("activite_principale")),
        diffusion=diffusion,
        address=address,
        head_office=data.get("siege_social") is True,
        masked=_masked(diffusion, {"name": name, "street": address.street}),
    )
