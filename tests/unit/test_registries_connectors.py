"""Registry connectors on httpx.MockTransport, with answers shaped as the real APIs send them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from connectors.registries.annuaire import RECORDS_PATH, AnnuaireConnector
from connectors.registries.entreprise import CallContext, EntrepriseConnector
from connectors.registries.errors import (
    RegistryNotDiffusibleError,
    RegistryQuotaError,
    RegistryUnavailableError,
    retry_after_seconds,
)
from connectors.registries.http import MAX_ANSWER_BYTES, build_registry_client
from connectors.registries.models import Diffusion, NotFound, RecordKind, RegistryRecord
from connectors.registries.sirene import API_KEY_HEADER, SireneConnector, sirene_headers
from relais.errors import (
    PartnerAuthError,
    PartnerPermanentError,
    PartnerReplyTooLargeError,
    PartnerTimeoutError,
    PartnerTransientError,
)

Handler = Callable[[httpx.Request], httpx.Response]

# --- real-shaped answers ---------------------------------------------------------------

SIRENE_UNIT_COMMUNE = {
    "header": {"statut": 200, "message": "OK"},
    "uniteLegale": {
        "siren": "214400152",
        "statutDiffusionUniteLegale": "O",
        "unitePurgeeUniteLegale": None,
        "dateCreationUniteLegale": "1983-03-01",
        "sigleUniteLegale": None,
        "prenom1UniteLegale": None,
        "trancheEffectifsUniteLegale": "42",
        "categorieEntreprise": "GE",
        "dateDernierTraitementUniteLegale": "2024-03-22T10:00:00.000",
        "nombrePeriodesUniteLegale": 3,
        "periodesUniteLegale": [
            {
                "dateFin": None,
                "dateDebut": "2008-01-01",
                "etatAdministratifUniteLegale": "A",
                "changementEtatAdministratifUniteLegale": False,
                "nomUniteLegale": None,
                "denominationUniteLegale": "COMMUNE DE NANTES",
                "categorieJuridiqueUniteLegale": "7210",
                "activitePrincipaleUniteLegale": "84.11Z",
                "nomenclatureActivitePrincipaleUniteLegale": "NAFRev2",
                "nicSiegeUniteLegale": "00010",
            },
            {
                "dateFin": "2007-12-31",
                "dateDebut": "1983-03-01",
                "etatAdministratifUniteLegale": "A",
                "denominationUniteLegale": "VILLE DE NANTES",
                "categorieJuridiqueUniteLegale": "7210",
                "activitePrincipaleUniteLegale": "75.1A",
                "nicSiegeUniteLegale": "00010",
            },
        ],
    },
}

SIRENE_ESTABLISHMENT_CLOSED_PARTIAL = {
    "header": {"statut": 200, "message": "OK"},
    "etablissement": {
        "siren": "005520135",
        "nic": "00038",
        "siret": "00552013500038",
        "statutDiffusionEtablissement": "P",
        "dateCreationEtablissement": "1995-06-01",
        "etablissementSiege": False,
        "uniteLegale": {
            "etatAdministratifUniteLegale": "A",
            "statutDiffusionUniteLegale": "P",
            "denominationUniteLegale": None,
            "nomUniteLegale": "[ND]",
            "prenom1UniteLegale": "[ND]",
            "categorieJuridiqueUniteLegale": "1000",
            "activitePrincipaleUniteLegale": "43.21A",
        },
        "adresseEtablissement": {
            "complementAdresseEtablissement": None,
            "numeroVoieEtablissement": "[ND]",
            "typeVoieEtablissement": "[ND]",
            "libelleVoieEtablissement": "[ND]",
            "codePostalEtablissement": "44000",
            "libelleCommuneEtablissement": "NANTES",
            "codeCommuneEtablissement": "44109",
        },
        "periodesEtablissement": [
            {
                "dateFin": None,
                "dateDebut": "2021-09-30",
                "etatAdministratifEtablissement": "F",
                "activitePrincipaleEtablissement": "43.21A",
                "denominationUsuelleEtablissement": None,
            },
            {
                "dateFin": "2021-09-29",
                "dateDebut": "1995-06-01",
                "etatAdministratifEtablissement": "A",
                "activitePrincipaleEtablissement": "43.21A",
            },
        ],
    },
}

ENTREPRISE_ESTABLISHMENT = {
    "data": {
        "siret": "41816609600069",
        "siege_social": True,
        "etat_administratif": "A",
        "date_fermeture": None,
        "enseigne": None,
        "activite_principale": {
            "code": "62.02A",
            "libelle": "Conseil en systèmes et logiciels informatiques",
            "nomenclature": "NAFRev2",
        },
        "status_diffusion": "diffusible",
        "diffusable_commercialement": True,
        "unite_legale": {
            "siren": "418166096",
            "siret_siege_social": "41816609600069",
            "type": "personne_morale",
            "personne_morale_attributs": {"raison_sociale": "OCTO TECHNOLOGY", "sigle": "OCTO"},
            "personne_physique_attributs": {"prenom_usuel": None, "nom_usage": None},
            "forme_juridique": {"code": "5599", "libelle": "SA à conseil d'administration"},
            "categorie_entreprise": "PME",
            "status_diffusion": "diffusible",
        },
        "adresse": {
            "numero_voie": "34",
            "type_voie": "AV",
            "libelle_voie": "DE L'OPERA",
            "code_postal": "75002",
            "libelle_commune": "PARIS 2",
            "code_commune": "75102",
        },
    },
    "links": {
        "unite_legale": "https://entreprise.api.gouv.fr/v3/insee/sirene/unites_legales/418166096"
    },
    "meta": {"date_derniere_mise_a_jour": 1704067200},
}

ENTREPRISE_UNIT_CEASED = {
    "data": {
        "siren": "130025265",
        "siret_siege_social": "13002526500013",
        "type": "personne_morale",
        "personne_morale_attributs": {"raison_sociale": "DINUM", "sigle": None},
        "personne_physique_attributs": {},
        "categorie_entreprise": "GE",
        "status_diffusion": "diffusible",
        "diffusable_commercialement": True,
        "forme_juridique": {"code": "7120", "libelle": "Service central d'un ministère"},
        "activite_principale": {"code": "84.11Z", "libelle": "Administration publique générale"},
        "etat_administratif": "C",
        "date_cessation": 1634133818,
        "date_creation": 1634103818,
    },
    "links": {},
    "meta": {"date_derniere_mise_a_jour": 1618396818},
}

ENTREPRISE_NOT_FOUND = {
    "errors": [
        {
            "code": "01003",
            "title": "Entité non trouvée",
            "detail": "L'identifiant indiqué n'existe pas, n'est pas connu ou ne comporte "
            "aucune information pour cet appel.",
            "meta": {"provider": "INSEE"},
        }
    ]
}

ANNUAIRE_MAIRIE = {
    "total_count": 1,
    "results": [
        {
            "nom": "Mairie - Nantes",
            "pivot": '[{"type_service_local": "mairie", "code_insee_commune": ["44109"]}]',
            "code_insee_commune": "44109",
            "siret": "21440109300015",
            "adresse": [
                {
                    "type_adresse": "Adresse",
                    "numero_voie": "2 rue de l'Hôtel-de-Ville",
                    "code_postal": "44000",
                    "nom_commune": "Nantes",
                }
            ],
            "telephone": '[{"valeur": "02 40 41 90 00", "description": ""}]',
            "site_internet": [{"libelle": "", "valeur": "https://metropole.nantes.fr"}],
            "adresse_courriel": "contact@mairie-nantes.fr",
            "url_service_public": "https://lannuaire.service-public.fr/pays-de-la-loire/loire-atlantique/mairie-44109-01",
            "date_modification": "14/03/2024 10:05:11",
        }
    ],
}


def client_for(handler: Handler, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return build_registry_client(
        "http://registry.test", headers=headers, transport=httpx.MockTransport(handler)
    )


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


# --- Sirene ----------------------------------------------------------------------------


async def test_sirene_unit_reads_the_current_period_and_sends_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SIRENE_UNIT_COMMUNE)

    async with client_for(handler, sirene_headers("k-123")) as client:
        record = await SireneConnector(client).lookup("214400152")
    assert seen[0].url.path == "/siren/214400152"
    assert seen[0].headers[API_KEY_HEADER] == "k-123"
    assert isinstance(record, RegistryRecord)
    assert record.kind is RecordKind.UNIT
    assert (record.name, record.legal_category, record.naf) == (
        "COMMUNE DE NANTES",
        "7210",
        "84.11Z",
    )
    assert record.active and record.closed_on is None
    assert record.head_office_siret == "21440015200010"
    assert record.diffusion is Diffusion.DIFFUSIBLE and record.masked == frozenset()


async def test_sirene_closed_partly_diffusible_establishment_masks_nd_fields() -> None:
    async with client_for(answer(200, SIRENE_ESTABLISHMENT_CLOSED_PARTIAL)) as client:
        record = await SireneConnector(client).lookup("00552013500038")
    assert isinstance(record, RegistryRecord)
    assert record.kind is RecordKind.ESTABLISHMENT and record.siren == "005520135"
    assert not record.active and record.closed_on == date(2021, 9, 30)
    assert record.diffusion is Diffusion.PARTIAL
    assert record.name is None  # [ND] never leaks as a name
    assert record.address is not None and record.address.street is None
    assert (record.address.postal_code, record.address.commune_code) == ("44000", "44109")
    assert {"nomUniteLegale", "libelleVoieEtablissement"} <= record.masked


async def test_sirene_404_is_a_not_found_result() -> None:
    body = {"header": {"statut": 404, "message": "Aucun élément trouvé pour le siren 999999998"}}
    async with client_for(answer(404, body)) as client:
        result = await SireneConnector(client).unit("999999998")
    assert isinstance(result, NotFound)
    assert result.message.startswith("Aucun élément trouvé")


async def test_sirene_403_non_diffusable_is_typed() -> None:
    body = {"header": {"statut": 403, "message": "Unité légale non diffusable (005520135)"}}
    async with client_for(answer(403, body)) as client:
        with pytest.raises(RegistryNotDiffusibleError) as caught:
            await SireneConnector(client).unit("005520135")
    assert not caught.value.retriable and caught.value.status == 403


async def test_sirene_429_carries_retry_after() -> None:
    body = {"header": {"statut": 429, "message": "Too Many Requests"}}
    async with client_for(answer(429, body, {"Retry-After": "17"})) as client:
        with pytest.raises(RegistryQuotaError) as caught:
            await SireneConnector(client).unit("214400152")
    assert isinstance(caught.value, PartnerTransientError)
    assert caught.value.retriable and caught.value.retry_after == 17.0


async def test_sirene_401_is_an_auth_error_and_503_is_unavailable() -> None:
    async with client_for(answer(401, {"message": "Invalid API key"})) as client:
        with pytest.raises(PartnerAuthError):
            await SireneConnector(client).unit("214400152")
    async with client_for(answer(503, {"header": {"statut": 503, "message": "x"}})) as client:
        with pytest.raises(RegistryUnavailableError) as caught:
            await SireneConnector(client).unit("214400152")
    assert caught.value.retriable


async def test_transport_failures_are_translated() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client_for(timeout) as client:
        with pytest.raises(PartnerTimeoutError):
            await SireneConnector(client).unit("214400152")
    async with client_for(refused) as client:
        with pytest.raises(PartnerTransientError):
            await SireneConnector(client).unit("214400152")


async def test_oversized_answer_is_refused_without_reading_it_whole() -> None:
    big = json.dumps({"header": {"statut": 200}, "pad": "x" * (MAX_ANSWER_BYTES + 10)})
    async with client_for(lambda r: httpx.Response(200, text=big)) as client:
        with pytest.raises(PartnerReplyTooLargeError):
            await SireneConnector(client).unit("214400152")


async def test_invalid_numbers_are_refused_before_any_call() -> None:
    async with client_for(answer(500, {})) as client:
        with pytest.raises(ValueError):
            await SireneConnector(client).lookup("214400153")


# --- API Entreprise --------------------------------------------------------------------

CALL = CallContext(context="Contrôle de légalité", recipient="21440015200010", object="acte CC")


async def test_entreprise_sends_context_recipient_object_and_bearer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ENTREPRISE_ESTABLISHMENT)

    headers = {"Authorization": "Bearer t0k"}
    async with client_for(handler, headers) as client:
        record = await EntrepriseConnector(client, CALL).lookup("41816609600069")
    request = seen[0]
    assert request.url.path == "/v3/insee/sirene/etablissements/41816609600069"
    assert request.url.params["recipient"] == "21440015200010"
    assert request.url.params["context"] == "Contrôle de légalité"
    assert request.url.params["object"] == "acte CC"
    assert request.headers["Authorization"] == "Bearer t0k"
    assert isinstance(record, RegistryRecord)
    assert (record.name, record.naf, record.legal_category) == ("OCTO TECHNOLOGY", "62.02A", "5599")
    assert record.head_office is True and record.active
    assert record.address is not None and record.address.commune_code == "75102"


async def test_entreprise_ceased_unit_has_its_closing_date() -> None:
    async with client_for(answer(200, ENTREPRISE_UNIT_CEASED)) as client:
        record = await EntrepriseConnector(client, CALL).unit("130025265")
    assert isinstance(record, RegistryRecord)
    assert not record.active and record.closed_on == date(2021, 10, 13)
    assert record.head_office_siret == "13002526500013"


async def test_entreprise_errors() -> None:
    async with client_for(answer(404, ENTREPRISE_NOT_FOUND)) as client:
        result = await EntrepriseConnector(client, CALL).unit("130025265")
    assert isinstance(result, NotFound) and "Entité non trouvée" in result.message
    for status, expected in (
        (451, RegistryNotDiffusibleError),
        (422, PartnerPermanentError),
        (403, PartnerAuthError),
        (502, RegistryUnavailableError),
        (429, RegistryQuotaError),
    ):
        async with client_for(answer(status, ENTREPRISE_NOT_FOUND)) as client:
            with pytest.raises(expected) as caught:
                await EntrepriseConnector(client, CALL).unit("130025265")
        assert caught.value.status == status
    async with client_for(answer(429, {"errors": []})) as client:
        with pytest.raises(RegistryQuotaError) as quota:
            await EntrepriseConnector(client, CALL).unit("130025265")
    assert quota.value.retry_after == 60.0  # no Retry-After: one window


def test_call_context_is_checked() -> None:
    from relais.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        CallContext(context="x", recipient="21440015200016", object="y")
    with pytest.raises(ConfigurationError):
        CallContext(context=" ", recipient="21440015200010", object="y")


# --- Annuaire --------------------------------------------------------------------------


async def test_annuaire_reads_embedded_json_strings() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANNUAIRE_MAIRIE)

    async with client_for(handler) as client:
        entries = await AnnuaireConnector(client).by_commune("44109")
    assert seen[0].url.path == RECORDS_PATH
    assert seen[0].url.params["where"] == 'code_insee_commune="44109" and pivot like "mairie"'
    (entry,) = entries
    assert entry.pivot == ("mairie",)
    assert entry.phone == "02 40 41 90 00"
    assert entry.website == "https://metropole.nantes.fr"
    assert entry.address is not None and entry.address.postal_code == "44000"


async def test_annuaire_empty_is_not_found_and_errors_are_typed() -> None:
    async with client_for(answer(200, {"total_count": 0, "results": []})) as client:
        result = await AnnuaireConnector(client).by_siret("21440109300015")
    assert isinstance(result, NotFound)
    bad = {"error_code": "ODSQLError", "message": "Query is malformed"}
    async with client_for(answer(400, bad)) as client:
        with pytest.raises(PartnerPermanentError, match="Query is malformed"):
            await AnnuaireConnector(client).by_siret("21440109300015")
    async with client_for(answer(200, ANNUAIRE_MAIRIE)) as client:
        with pytest.raises(ValueError):
            await AnnuaireConnector(client).by_commune('44109" or "1"="1')


def test_retry_after_forms() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 4, 22, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds("Fri, 04 Dec 2026 22:00:45 GMT", now=now) == 45.0
    assert retry_after_seconds("999999") == 3600.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
