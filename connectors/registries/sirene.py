"""INSEE API Sirene 3.11: ``/siren/{siren}`` and ``/siret/{siret}``.

Facts (``docs/sandbox-registries.md`` names the sources): base
``https://api.insee.fr/api-sirene/3.11``, API key in the ``X-INSEE-Api-Key-Integration``
header, 30 requests per minute for an ordinary subscription. Answers are JSON with a
``header`` (``statut``, ``message``) and ``uniteLegale`` (its current state in
``periodesUniteLegale[]``, the period whose ``dateFin`` is null) or ``etablissement``
(``uniteLegale``, ``adresseEtablissement``, ``periodesEtablissement[]``). A unit is
``A`` (active) or ``C`` (cessée), an establishment ``A`` or ``F`` (fermé).
``statutDiffusion…`` is ``O`` (diffusible) or ``P`` (partly diffusible: masked fields
hold ``[ND]``). Unknown number: 404 with ``Aucun élément trouvé pour le siren …``;
non-diffusible unit: 403 ``Unité légale non diffusable (…)``; over quota: 429.
"""

from __future__ import annotations

from datetime import date

import httpx
import structlog

from connectors.registries.errors import RegistryNotDiffusibleError, status_error
from connectors.registries.http import Answer, as_dict, as_list, get_json
from connectors.registries.lookup import UnitOrEstablishmentLookup
from connectors.registries.models import (
    NOT_DIFFUSED,
    Address,
    Diffusion,
    LookupResult,
    NotFound,
    RecordKind,
    Registry,
    RegistryRecord,
    clean,
)
from relais.errors import PartnerReplyError
from relais.identifiers import SIREN_LENGTH

log = structlog.get_logger(__name__)

SIRENE_BASE_URL = "https://api.insee.fr/api-sirene/3.11"
API_KEY_HEADER = "X-INSEE-Api-Key-Integration"
PARTNER = Registry.SIRENE.value


def sirene_headers(api_key: str) -> dict[str, str]:
    return {API_KEY_HEADER: api_key}


class SireneConnector(UnitOrEstablishmentLookup):
    """Look up units and establishments in Sirene; the client carries the key header."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def unit(self, siren: str) -> LookupResult:
        answer = await get_json(self._client, PARTNER, f"/siren/{siren}", what=f"siren {siren}")
        if answer.status == 200:
            record = parse_unit(answer.body)
            log.debug("registries.sirene_unit_read", siren=siren, active=record.active)
            return record
        return self._not_found_or_raise(answer, siren, f"siren {siren}")

    async def establishment(self, siret: str) -> LookupResult:
        answer = await get_json(self._client, PARTNER, f"/siret/{siret}", what=f"siret {siret}")
        if answer.status == 200:
            return parse_establishment(answer.body)
        return self._not_found_or_raise(answer, siret, f"siret {siret}")

    @staticmethod
    def _not_found_or_raise(answer: Answer, identifier: str, what: str) -> NotFound:
        message = header_message(answer.body)
        if answer.status == 404:
            return NotFound(Registry.SIRENE, identifier, message or "not found")
        if answer.status == 403 and "diffusable" in message.lower():
            raise RegistryNotDiffusibleError(f"sirene: {message}", partner=PARTNER, status=403)
        raise status_error(PARTNER, what, answer.status, message, answer.header("Retry-After"))


def header_message(body: object) -> str:
    header = as_dict(as_dict(body).get("header"))
    return str(header.get("message") or "")[:500]


def _diffusion(code: object) -> Diffusion:
    if code == "P":
        return Diffusion.PARTIAL
    if code == "N":
        return Diffusion.NON_DIFFUSIBLE
    return Diffusion.DIFFUSIBLE


def _current(periods: object) -> dict[str, object]:
    """The current period: the one without ``dateFin`` (Sirene lists the newest first)."""
    rows = [as_dict(p) for p in as_list(periods)]
    for row in rows:
        if row.get("dateFin") is None:
            return row
    return rows[0] if rows else {}


def _date(value: object) -> date | None:
    text = clean(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _masked(*sources: dict[str, object]) -> frozenset[str]:
    return frozenset(k for source in sources for k, v in source.items() if v == NOT_DIFFUSED)


def _unit_name(fields: dict[str, object]) -> str | None:
    name = clean(fields.get("denominationUniteLegale"))
    if name is not None:
        return name
    person = [clean(fields.get("prenom1UniteLegale")), clean(fields.get("nomUniteLegale"))]
    joined = " ".join(p for p in person if p)
    return joined or None


def _require(body: object, key: str, what: str) -> dict[str, object]:
    value = as_dict(body).get(key)
    if not isinstance(value, dict):
        raise PartnerReplyError(f"sirene: {what} answer has no {key!r} object", partner=PARTNER)
    return value


def parse_unit(body: object) -> RegistryRecord:
    unit = _require(body, "uniteLegale", "siren")
    period = _current(unit.get("periodesUniteLegale"))
    fields = {**unit, **period}
    siren = str(unit.get("siren") or "")
    if len(siren) != SIREN_LENGTH:
        raise PartnerReplyError("sirene: siren answer without a 9-digit siren", partner=PARTNER)
    active = period.get("etatAdministratifUniteLegale") != "C"
    nic = clean(period.get("nicSiegeUniteLegale"))
    return RegistryRecord(
        registry=Registry.SIRENE,
        kind=RecordKind.UNIT,
        siren=siren,
        siret=None,
        name=_unit_name(fields),
        active=active,
        closed_on=None if active else _date(period.get("dateDebut")),
        legal_category=clean(period.get("categorieJuridiqueUniteLegale")),
        naf=clean(period.get("activitePrincipaleUniteLegale")),
        diffusion=_diffusion(unit.get("statutDiffusionUniteLegale")),
        address=None,
        head_office_siret=siren + nic if nic and len(nic) == 5 else None,
        masked=_masked(unit, period),
    )


def parse_establishment(body: object) -> RegistryRecord:
    etab = _require(body, "etablissement", "siret")
    unit = as_dict(etab.get("uniteLegale"))
    period = _current(etab.get("periodesEtablissement"))
    raw_address = as_dict(etab.get("adresseEtablissement"))
    siret = str(etab.get("siret") or "")
    if len(siret) != 14:
        raise PartnerReplyError("sirene: siret answer without a 14-digit siret", partner=PARTNER)
    active = period.get("etatAdministratifEtablissement") != "F"
    street_parts = [
        clean(raw_address.get(key))
        for key in ("numeroVoieEtablissement", "typeVoieEtablissement", "libelleVoieEtablissement")
    ]
    street = " ".join(p for p in street_parts if p) or None
    address = Address(
        street=street,
        postal_code=clean(raw_address.get("codePostalEtablissement")),
        commune=clean(raw_address.get("libelleCommuneEtablissement")),
        commune_code=clean(raw_address.get("codeCommuneEtablissement")),
    )
    diffusion = _diffusion(etab.get("statutDiffusionEtablissement"))
    if _diffusion(unit.get("statutDiffusionUniteLegale")) is Diffusion.PARTIAL:
        diffusion = Diffusion.PARTIAL
    return RegistryRecord(
        registry=Registry.SIRENE,
        kind=RecordKind.ESTABLISHMENT,
        siren=siret[:SIREN_LENGTH],
        siret=siret,
        name=clean(period.get("denominationUsuelleEtablissement")) or _unit_name(unit),
        active=active,
        closed_on=None if active else _date(period.get("dateDebut")),
        legal_category=clean(unit.get("categorieJuridiqueUniteLegale")),
        naf=clean(period.get("activitePrincipaleEtablissement"))
        or clean(unit.get("activitePrincipaleUniteLegale")),
        diffusion=diffusion,
        address=address,
        head_office=etab.get("etablissementSiege") is True,
        masked=_masked(etab, unit, period, raw_address),
    )
