"""The Annuaire de l'administration (DILA), an open Opendatasoft v2.1 dataset.

Facts (``docs/sandbox-registries.md``): ``GET https://api-lannuaire.service-public.fr/api/
explore/v2.1/catalog/datasets/api-lannuaire-administration/records`` with ``where``,
``select`` and ``limit``; no key. The answer is ``{"total_count": n, "results": [...]}``;
each record has ``nom``, ``pivot``, ``code_insee_commune``, ``siret``, ``adresse``,
``telephone``, ``site_internet``, ``adresse_courriel``, ``url_service_public``,
``date_modification``. Gotcha: ``pivot``, ``adresse``, ``telephone`` and ``site_internet``
are arrays of objects, sometimes serialised as a JSON string. A bad ``where`` is a 400
``{"error_code": "ODSQLError", "message": …}``.
"""

from __future__ import annotations

import json

import httpx

from connectors.registries.errors import status_error
from connectors.registries.http import as_dict, as_list, get_json
from connectors.registries.models import Address, AdministrationEntry, NotFound, Registry, clean
from relais.errors import PartnerReplyError
from relais.identifiers import is_valid_siret

ANNUAIRE_BASE_URL = "https://api-lannuaire.service-public.fr"
RECORDS_PATH = "/api/explore/v2.1/catalog/datasets/api-lannuaire-administration/records"
PARTNER = Registry.ANNUAIRE.value
MAX_EMBEDDED_JSON = 64 * 1024
PAGE_LIMIT = 20


class AnnuaireConnector:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def by_siret(self, siret: str) -> AdministrationEntry | NotFound:
        """The office registered with ``siret`` (the first one when several share it)."""
        if not is_valid_siret(siret):
            raise ValueError(f"not a valid SIRET: {siret!r}")
        entries = await self._records(f'siret="{siret}"', f"siret {siret}")
        if not entries:
            return NotFound(Registry.ANNUAIRE, siret, "no office with this SIRET")
        return entries[0]

    async def by_commune(
        self, commune_code: str, pivot: str = "mairie"
    ) -> list[AdministrationEntry]:
        """The offices of one kind (``pivot``) in a commune (code officiel géographique)."""
        if len(commune_code) != 5 or not commune_code.isalnum() or not commune_code.isascii():
            raise ValueError(f"not a commune code: {commune_code!r}")
        if not pivot.replace("_", "").isalnum():
            raise ValueError(f"not a pivot name: {pivot!r}")
        where = f'code_insee_commune="{commune_code}" and pivot like "{pivot}"'
        return await self._records(where, f"commune {commune_code}")

    async def _records(self, where: str, what: str) -> list[AdministrationEntry]:
        answer = await get_json(
            self._client,
            PARTNER,
            RECORDS_PATH,
            params={"where": where, "limit": str(PAGE_LIMIT)},
            what=what,
        )
        if answer.status != 200:
            body = as_dict(answer.body)
            message = str(body.get("message") or body.get("error_code") or "")[:500]
            raise status_error(PARTNER, what, answer.status, message, answer.header("Retry-After"))
        results = as_dict(answer.body).get("results")
        if not isinstance(results, list):
            raise PartnerReplyError(f"annuaire: {what} answer has no 'results'", partner=PARTNER)
        return [parse_entry(as_dict(row)) for row in results]


def embedded(value: object) -> list[dict[str, object]]:
    """An array of objects that may arrive serialised as a JSON string."""
    if isinstance(value, str):
        if not value.strip() or len(value) > MAX_EMBEDDED_JSON:
            return []
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [as_dict(item) for item in as_list(value) if isinstance(item, dict)]


def _first(value: object, key: str) -> str | None:
    for item in embedded(value):
        text = clean(item.get(key))
        if text is not None:
            return text
    return None


def parse_entry(row: dict[str, object]) -> AdministrationEntry:
    addresses = embedded(row.get("adresse"))
    address = None
    if addresses:
        first = addresses[0]
        address = Address(
            street=clean(first.get("numero_voie")),
            postal_code=clean(first.get("code_postal")),
            commune=clean(first.get("nom_commune")),
            commune_code=clean(row.get("code_insee_commune")),
        )
    pivots = tuple(
        text
        for text in (clean(p.get("type_service_local")) for p in embedded(row.get("pivot")))
        if text
    )
    return AdministrationEntry(
        name=clean(row.get("nom")) or "",
        pivot=pivots,
        commune_code=clean(row.get("code_insee_commune")),
        siret=clean(row.get("siret")),
        email=clean(row.get("adresse_courriel")),
        phone=_first(row.get("telephone"), "valeur"),
        website=_first(row.get("site_internet"), "valeur"),
        url_service_public=clean(row.get("url_service_public")),
        address=address,
        modified=clean(row.get("date_modification")),
    )
