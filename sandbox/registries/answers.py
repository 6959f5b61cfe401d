"""The JSON each registry answers, built from :mod:`sandbox.registries.data`.

Shapes follow the real APIs (sources in ``docs/sandbox-registries.md``): Sirene's
``header`` + ``uniteLegale``/``etablissement`` with ``periodes…`` and ``[ND]`` in masked
fields; API Entreprise's ``data``/``links``/``meta`` and ``errors[]``; the Annuaire's
Opendatasoft ``total_count``/``results``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.registries.data import Commune, Establishment, Unit

ND = "[ND]"
SIRENE_BASE = "/api-sirene/3.11"
ENTREPRISE_PUBLIC = "https://entreprise.api.gouv.fr/v3/insee/sirene"


def sirene_header(status: int, message: str) -> dict[str, Any]:
    return {"header": {"statut": status, "message": message}}


def _masked(unit: Unit, value: str | None) -> str | None:
    return ND if unit.diffusion == "P" else value


def _sirene_unit_fields(unit: Unit) -> dict[str, Any]:
    return {
        "etatAdministratifUniteLegale": "A" if unit.active else "C",
        "statutDiffusionUniteLegale": unit.diffusion,
        "denominationUniteLegale": unit.name,
        "nomUniteLegale": _masked(unit, unit.last_name),
        "prenom1UniteLegale": _masked(unit, unit.first_name),
        "categorieJuridiqueUniteLegale": unit.legal_category,
        "activitePrincipaleUniteLegale": unit.naf,
        "nomenclatureActivitePrincipaleUniteLegale": "NAFRev2",
        "nicSiegeUniteLegale": unit.head_office.siret[9:],
    }


def _periods(
    active: bool,
    created: date,
    closed_on: date | None,
    state_key: str,
    closed_code: str,
    fields: dict[str, Any],
) -> list[dict[str, Any]]:
    """Newest first; a closed unit has its closing period and the active one before it."""
    if active or closed_on is None:
        return [{"dateFin": None, "dateDebut": created.isoformat(), state_key: "A", **fields}]
    return [
        {"dateFin": None, "dateDebut": closed_on.isoformat(), state_key: closed_code, **fields},
        {
            "dateFin": (closed_on - timedelta(days=1)).isoformat(),
            "dateDebut": created.isoformat(),
            state_key: "A",
            **fields,
        },
    ]


def sirene_unit(unit: Unit) -> dict[str, Any]:
    fields = {
        k: v
        for k, v in _sirene_unit_fields(unit).items()
        if k
        not in (
            "statutDiffusionUniteLegale",
            "etatAdministratifUniteLegale",
            "nomUniteLegale",
            "prenom1UniteLegale",
        )
    }
    body = {
        "siren": unit.siren,
        "statutDiffusionUniteLegale": unit.diffusion,
        "dateCreationUniteLegale": unit.created.isoformat(),
        "nomUniteLegale": _masked(unit, unit.last_name),
        "prenom1UniteLegale": _masked(unit, unit.first_name),
        "sexeUniteLegale": ND if unit.diffusion == "P" else None,
        "dateDernierTraitementUniteLegale": "2026-11-30T02:14:07.000",
        "periodesUniteLegale": _periods(
            unit.active, unit.created, unit.closed_on, "etatAdministratifUniteLegale", "C", fields
        ),
    }
    return {**sirene_header(200, "OK"), "uniteLegale": body}


def _address_fields(unit: Unit, etab: Establishment) -> dict[str, Any]:
    commune: Commune = etab.commune
    return {
        "complementAdresseEtablissement": None,
        "numeroVoieEtablissement": _masked(unit, etab.number),
        "typeVoieEtablissement": _masked(unit, etab.street_type),
        "libelleVoieEtablissement": _masked(unit, etab.street),
        "codePostalEtablissement": commune.postal_code,
        "libelleCommuneEtablissement": commune.name,
        "codeCommuneEtablissement": commune.code,
    }


def sirene_establishment(unit: Unit, etab: Establishment) -> dict[str, Any]:
    period_fields = {
        "activitePrincipaleEtablissement": etab.naf,
        "denominationUsuelleEtablissement": None,
    }
    body = {
        "siren": unit.siren,
        "nic": etab.siret[9:],
        "siret": etab.siret,
        "statutDiffusionEtablissement": unit.diffusion,
        "dateCreationEtablissement": etab.created.isoformat(),
        "etablissementSiege": etab.head_office,
        "uniteLegale": _sirene_unit_fields(unit),
        "adresseEtablissement": _address_fields(unit, etab),
        "periodesEtablissement": _periods(
            etab.active,
            etab.created,
            etab.closed_on,
            "etatAdministratifEtablissement",
            "F",
            period_fields,
        ),
    }
    return {**sirene_header(200, "OK"), "etablissement": body}


def _timestamp(day: date | None) -> int | None:
    if day is None:
        return None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


STATUS_DIFFUSION = {"O": "diffusible", "P": "partiellement_diffusible", "N": "non_diffusible"}


def _entreprise_unit_fields(unit: Unit) -> dict[str, Any]:
    partial = unit.diffusion == "P"
    return {
        "siren": unit.siren,
        "rna": None,
        "siret_siege_social": unit.head_office.siret,
        "type": "personne_physique" if unit.legal_category == "1000" else "personne_morale",
        "personne_morale_attributs": {"raison_sociale": unit.name, "sigle": None},
        "personne_physique_attributs": {
            "pseudonyme": None,
            "prenom_usuel": None if partial else unit.first_name,
            "prenom_1": None if partial else unit.first_name,
            "nom_usage": None,
            "nom_naissance": None if partial else unit.last_name,
            "sexe": None,
        },
        "categorie_entreprise": None if unit.legal_category == "1000" else "PME",
        "status_diffusion": STATUS_DIFFUSION[unit.diffusion],
        "diffusable_commercialement": unit.diffusion == "O",
        "forme_juridique": {"code": unit.legal_category, "libelle": None},
        "activite_principale": {"code": unit.naf, "libelle": None, "nomenclature": "NAFRev2"},
        "etat_administratif": "A" if unit.active else "C",
        "date_cessation": _timestamp(unit.closed_on),
        "date_creation": _timestamp(unit.created),
    }


def entreprise_unit(unit: Unit) -> dict[str, Any]:
    return {
        "data": _entreprise_unit_fields(unit),
        "links": {"siege_social": f"{ENTREPRISE_PUBLIC}/etablissements/{unit.head_office.siret}"},
        "meta": {"date_derniere_mise_a_jour": 1764468847},
    }


def entreprise_establishment(unit: Unit, etab: Establishment) -> dict[str, Any]:
    partial = unit.diffusion == "P"
    data = {
        "siret": etab.siret,
        "siege_social": etab.head_office,
        "etat_administratif": "A" if etab.active else "F",
        "date_fermeture": _timestamp(etab.closed_on),
        "enseigne": None,
        "activite_principale": {"code": etab.naf, "libelle": None, "nomenclature": "NAFRev2"},
        "status_diffusion": STATUS_DIFFUSION[unit.diffusion],
        "diffusable_commercialement": unit.diffusion == "O",
        "date_creation": _timestamp(etab.created),
        "unite_legale": {
            k: v
            for k, v in _entreprise_unit_fields(unit).items()
            if k not in ("etat_administratif", "date_cessation", "date_creation")
        },
        "adresse": {
            "status_diffusion": STATUS_DIFFUSION[unit.diffusion],
            "complement_adresse": None,
            "numero_voie": None if partial else etab.number,
            "type_voie": None if partial else etab.street_type,
            "libelle_voie": None if partial else etab.street,
            "code_postal": etab.commune.postal_code,
            "libelle_commune": etab.commune.name,
            "code_commune": etab.commune.code,
        },
    }
    return {
        "data": data,
        "links": {"unite_legale": f"{ENTREPRISE_PUBLIC}/unites_legales/{unit.siren}"},
        "meta": {"date_derniere_mise_a_jour": 1764468847},
    }


def entreprise_error(code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "errors": [
            {
                "code": code,
                "title": title,
                "detail": detail,
                "source": None,
                "meta": {"provider": "INSEE"},
                **extra,
            }
        ]
    }


def annuaire_mairie(commune: Commune, unit: Unit) -> dict[str, Any]:
    """One record as the Opendatasoft API gives it: some arrays serialised as JSON strings."""
    slug = commune.name.lower().replace(" ", "-")
    return {
        "plage_ouverture": json.dumps(
            [
                {
                    "nom_jour_debut": "Lundi",
                    "nom_jour_fin": "Vendredi",
                    "valeur_heure_debut_1": "08:30:00",
                    "valeur_heure_fin_1": "17:30:00",
                }
            ]
        ),
        "site_internet": json.dumps([{"libelle": "", "valeur": f"https://www.{slug}.fr"}]),
        "telephone": json.dumps([{"valeur": "03 80 00 00 00", "description": ""}]),
        "nom": f"Mairie - {commune.name.title()}",
        "pivot": json.dumps(
            [{"type_service_local": "mairie", "code_insee_commune": [commune.code]}]
        ),
        "adresse": [
            {
                "type_adresse": "Adresse",
                "complement1": "",
                "numero_voie": "Place de la Mairie",
                "code_postal": commune.postal_code,
                "nom_commune": commune.name.title(),
                "pays": "",
                "longitude": "",
                "latitude": "",
            }
        ],
        "code_insee_commune": commune.code,
        "siret": unit.head_office.siret,
        "adresse_courriel": f"mairie@{slug}.fr",
        "url_service_public": f"https://lannuaire.service-public.fr/mairie-{commune.code}-01",
        "date_modification": "14/03/2025 10:05:11",
    }
