"""The classification the sandbox TdT serves by default (7-2 ``RetourClassification``).

The nine level-1 subjects are those of the real sample
(``shared/reference/actes/samples/exemple_codes_matieres.xml``), each with a few
level-2 matières and, for two of them, a level 3. Natures 1–6 each allow their
``99_`` typology (the default Pastell picks) and ``99_AU`` for other documents.
The labels of the typologies are the sandbox's own.
"""

from __future__ import annotations

from datetime import date

from relais.actes.classification import Classification, Matiere, NatureEntry, Typology
from relais.actes.codes import NATURES

DEFAULT_CLASSIFICATION_DATE = date(2024, 1, 15)

_MAIN_TYPOLOGIES: dict[str, Typology] = {
    "DE": Typology("99_DE", "Délibération"),
    "AR": Typology("99_AR", "Arrêté réglementaire"),
    "AI": Typology("99_AI", "Arrêté individuel"),
    "CC": Typology("99_CO", "Contrat, convention ou avenant"),
    "BF": Typology("99_BF", "Document budgétaire ou financier"),
    "AU": Typology("99_AU", "Autre document"),
}
_OTHER = Typology("99_AU", "Autre document")


def _natures() -> tuple[NatureEntry, ...]:
    entries = []
    for nature in NATURES:
        main = _MAIN_TYPOLOGIES[nature.abbreviation]
        typologies = (main,) if main.code == _OTHER.code else (main, _OTHER)
        entries.append(NatureEntry(nature.code, nature.abbreviation, nature.label, typologies))
    return tuple(entries)


def _node(code: int, label: str, *children: Matiere) -> Matiere:
    return Matiere(code, label, tuple(children))


_MATIERES: tuple[Matiere, ...] = (
    _node(
        1,
        "Commande publique",
        _node(1, "Marchés publics"),
        _node(2, "Délégation de service public"),
        _node(3, "Conventions de mandat"),
        _node(4, "Autres types de contrats"),
    ),
    _node(
        2,
        "Urbanisme",
        _node(1, "Documents d'urbanisme"),
        _node(2, "Actes relatifs au droit d'occupation ou d'utilisation des sols"),
        _node(3, "Droit de préemption urbain"),
    ),
    _node(
        3,
        "Domaine et patrimoine",
        _node(1, "Acquisitions"),
        _node(2, "Aliénations"),
        _node(3, "Locations"),
    ),
    _node(
        4,
        "Fonction publique",
        _node(1, "Personnels titulaires et stagiaires de la FPT"),
        _node(2, "Personnels contractuels"),
        _node(3, "Fonction publique hospitalière"),
    ),
    _node(
        5,
        "Institutions et vie politique",
        _node(1, "Election exécutif"),
        _node(2, "Fonctionnement des assemblées"),
        _node(3, "Désignation de représentants"),
    ),
    _node(
        6,
        "Libertés publiques et pouvoirs de police",
        _node(1, "Police municipale"),
        _node(2, "Pouvoir du président du conseil général"),
        _node(4, "Autres actes réglementaires"),
    ),
    _node(
        7,
        "Finances locales",
        _node(
            1,
            "Décisions budgétaires",
            _node(1, "Budget primitif"),
            _node(2, "Compte administratif"),
        ),
        _node(2, "Fiscalité"),
        _node(3, "Emprunts"),
        _node(5, "Subventions", _node(1, "Subventions aux associations")),
    ),
    _node(
        8,
        "Domaines de compétences par thèmes",
        _node(1, "Enseignement"),
        _node(2, "Aide sociale"),
        _node(3, "Voirie"),
        _node(4, "Aménagement du territoire"),
    ),
    _node(
        9,
        "Autres domaines de compétences",
        _node(1, "Autres domaines de compétences des communes"),
        _node(2, "Autres domaines de compétences des départements"),
        _node(4, "Interventions économiques"),
    ),
)


def default_classification(date_version: date = DEFAULT_CLASSIFICATION_DATE) -> Classification:
    """The sandbox's classification: natures 1–6 with typologies, nine level-1 matières."""
    return Classification(date_version=date_version, natures=_natures(), matieres=_MATIERES)
