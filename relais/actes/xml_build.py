"""Builders of every @CTES business message and envelope, schema-valid by construction.

Each builder returns ISO-8859-1 bytes with the ``actes:`` and ``insee:``
prefixes and qualified attributes (``actes:Date``, ``actes:IDActe``), and
validates its output against the ACTES schema before returning (a
``ValidationError`` otherwise). Free text (objet, detail, motif…) is folded to
Latin-1 first (``relais.actes.text``): ``œ`` becomes ``oe``; characters with no
Latin-1 equivalent are refused with a ``charset`` reason.

Collectivité side: ``build_acte`` (1-1), ``build_envelope_cl``, the replies 2-2,
3-2/3-3/3-4, 4-2/4-3/4-4, ``build_annulation`` (6-1) and
``build_demande_classification`` (7-1).
The prefecture side (1-2, 1-3, 2-1, 3-1, 3-5, 4-1, 4-5, 5-1, 6-2, 7-3 and the
prefecture's envelopes) is only emitted by the sandbox TdT: ``sandbox.tdt.prefecture_xml``,
built on the element helpers here; the 7-2 builder is
``relais.actes.classification.build_retour_classification``.

``DateCourrierPref`` in the collectivité replies is the date of the prefecture
letter being answered (the schema only says "date du courrier"; STELA writes
the day of the reply there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from lxml import etree

from relais.actes.codes import INSEE_NS
from relais.actes.ids import department_reasons, id_acte_reasons
from relais.actes.metadata import DEFAULT_TYPOLOGY, ActeMetadata
from relais.actes.xml_write import (
    file_element,
    free_text,
    new_root,
    qname,
    require,
    serialize,
    sub,
)
from relais.errors import Reason
from relais.identifiers import siren_reasons

__all__ = [
    "DEFAULT_TYPOLOGY",
    "ActeMetadata",
    "Referent",
    "arrondissement_reasons",
    "build_acte",
    "build_annulation",
    "build_ar_demande_pc",
    "build_ar_lettre_observations",
    "build_demande_classification",
    "build_envelope_cl",
    "build_piece_complementaire",
    "build_refus_pc",
    "build_rejet_lettre_observations",
    "build_reponse_courrier_simple",
    "build_reponse_lettre_observations",
    "courrier_root",
    "courrier_with_document",
    "donnees_acte",
    "formulaires_element",
    "referent_element",
]


@dataclass(frozen=True)
class Referent:
    """A contact person in an envelope (every part optional)."""

    nom: str | None = None
    telephone: str | None = None
    email: str | None = None


# --- 1-1 Acte -------------------------------------------------------------------------


def donnees_acte(element: etree._Element, meta: ActeMetadata) -> None:
    """Fill a ``DonneesActe`` element (``Acte`` or ``ActeRecu``) from ``meta``."""
    require(meta.reasons(), "an Acte")
    element.set(qname("Date"), meta.decision_date.isoformat())
    element.set(qname("NumeroInterne"), meta.numero_interne)
    element.set(qname("CodeNatureActe"), str(meta.nature_code))
    for level, code in enumerate(meta.matieres, start=1):
        sub(element, f"CodeMatiere{level}", attrs={"CodeMatiere": code})
    sub(element, "Objet", free_text(meta.objet, "objet"))
    if meta.precedent_id_acte is not None:
        sub(element, "PrecedentIdentifiantActe", attrs={"IDActe": meta.precedent_id_acte})
    sub(element, "ClassificationDateVersion", meta.classification_date)
    file_element(element, "Document", meta.main_file)
    annexes = sub(element, "Annexes", attrs={"Nombre": len(meta.annex_files)})
    for name in meta.annex_files:
        file_element(annexes, "Annexe", name)
    sub(element, "DocumentPapier", "1" if meta.document_papier else "0")


def build_acte(meta: ActeMetadata) -> bytes:
    """1-1 ``Acte``: the metadata file of a transmitted acte (with ``DocumentPapier``)."""
    root = new_root("Acte")
    donnees_acte(root, meta)
    return serialize(root)


# --- Envelopes -------------------------------------------------------------------------


def referent_element(parent: etree._Element, referent: Referent | None) -> None:
    """The ``Referent`` of an envelope's emitter, when there is one."""
    if referent is None:
        return
    element = sub(parent, "Referent")
    if referent.nom is not None:
        sub(element, "Nom", free_text(referent.nom, "referent.nom"))
    if referent.telephone is not None:
        sub(element, "Telephone", free_text(referent.telephone, "referent.telephone"))
    if referent.email is not None:
        sub(element, "Email", referent.email)


def formulaires_element(parent: etree._Element, file_names: Sequence[str]) -> None:
    """The ``FormulairesEnvoyes`` of an envelope (at least one file)."""
    require(
        [] if file_names else [Reason("file_names", "required", "at least one message file")],
        "an envelope",
    )
    element = sub(parent, "FormulairesEnvoyes")
    for name in file_names:
        file_element(element, "Formulaire", name)


def arrondissement_reasons(value: int) -> list[Reason]:
    """What is wrong with an arrondissement (one digit)."""
    if not 0 <= value <= 9:
        return [Reason("arrondissement", "range", f"an arrondissement is one digit, got {value}")]
    return []


def _envelope_cl_content(
    root: etree._Element,
    siren: str,
    department: str,
    arrondissement: int,
    nature_collectivite: int,
    file_names: Sequence[str],
    return_emails: Sequence[str],
    referent: Referent | None,
) -> None:
    reasons = [
        *siren_reasons(siren),
        *department_reasons(department),
        *arrondissement_reasons(arrondissement),
    ]
    if not 0 <= nature_collectivite <= 99:
        reasons.append(
            Reason("nature_collectivite", "range", "the collectivité nature is two digits")
        )
    if not return_emails:
        reasons.append(Reason("return_emails", "required", "at least one return address"))
    require(reasons, "an EnveloppeCLMISILL")
    emetteur = sub(root, "Emetteur")
    sub(
        emetteur,
        "IDCL",
        attrs={
            qname("SIREN", INSEE_NS): siren,
            "Departement": department,
            "Arrondissement": arrondissement,
            "Nature": f"{nature_collectivite:02d}",
        },
    )
    referent_element(emetteur, referent)
    adresses = sub(root, "AdressesRetour")
    for email in return_emails:
        sub(adresses, "Email", email)
    formulaires_element(root, file_names)


def build_envelope_cl(
    siren: str,
    department: str,
    arrondissement: int,
    nature_collectivite: int,
    file_names: Sequence[str],
    return_emails: Sequence[str],
    referent: Referent | None = None,
) -> bytes:
    """``EnveloppeCLMISILL``: the collectivité's envelope listing the message files sent.

    ``nature_collectivite`` is the collectivité's own nature code (two digits,
    31 in the samples), not an acte nature.
    """
    root = new_root("EnveloppeCLMISILL")
    _envelope_cl_content(
        root,
        siren,
        department,
        arrondissement,
        nature_collectivite,
        file_names,
        return_emails,
        referent,
    )
    return serialize(root)


# --- Letters about an acte: the root both sides share ----------------------------------


def courrier_root(root_name: str, id_acte: str, courrier_date: date) -> etree._Element:
    """The root of a letter about an acte (``IDActe``, ``DateCourrierPref``)."""
    require(id_acte_reasons(id_acte), f"a {root_name}")
    return new_root(root_name, {"IDActe": id_acte, "DateCourrierPref": courrier_date})


def courrier_with_document(
    root_name: str, id_acte: str, courrier_date: date, document_file: str
) -> bytes:
    """A letter about an acte carrying one ``Document``."""
    root = courrier_root(root_name, id_acte, courrier_date)
    file_element(root, "Document", document_file)
    return serialize(root)


# --- Collectivité replies (2-2, 3-x, 4-x, 6-1, 7-1) --------------------------------------


def build_reponse_courrier_simple(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """2-2 ``ReponseCourrierSimple``: the collectivité answers a simple letter."""
    return courrier_with_document("ReponseCourrierSimple", id_acte, courrier_date, document_file)


def build_ar_demande_pc(id_acte: str, courrier_date: date) -> bytes:
    """3-2 ``ARDemandePieceComplementaire``: the collectivité acknowledges a 3-1."""
    return serialize(courrier_root("ARDemandePieceComplementaire", id_acte, courrier_date))


def build_refus_pc(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """3-3 ``RefusPieceComplementaire``: explicit refusal to send the documents."""
    return courrier_with_document("RefusPieceComplementaire", id_acte, courrier_date, document_file)


def build_piece_complementaire(
    id_acte: str, courrier_date: date, document_files: Sequence[str]
) -> bytes:
    """3-4 ``PieceComplementaire``: the requested documents (at least one)."""
    require(
        [] if document_files else [Reason("document_files", "required", "at least one file")],
        "a PieceComplementaire",
    )
    root = courrier_root("PieceComplementaire", id_acte, courrier_date)
    documents = sub(root, "Documents")
    for name in document_files:
        file_element(documents, "Document", name)
    return serialize(root)


def build_ar_lettre_observations(id_acte: str, courrier_date: date) -> bytes:
    """4-2 ``ARLettreObservations``: the collectivité acknowledges a 4-1."""
    return serialize(courrier_root("ARLettreObservations", id_acte, courrier_date))


def build_rejet_lettre_observations(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """4-3 ``RejetLettreObservations``: explicit refusal to answer the observations."""
    return courrier_with_document("RejetLettreObservations", id_acte, courrier_date, document_file)


def build_reponse_lettre_observations(
    id_acte: str, courrier_date: date, document_file: str
) -> bytes:
    """4-4 ``ReponseLettreObservations``: the collectivité answers the observations."""
    return courrier_with_document(
        "ReponseLettreObservations", id_acte, courrier_date, document_file
    )


def build_annulation(id_acte: str) -> bytes:
    """6-1 ``Annulation``: cancel the transmission of an acte."""
    require(id_acte_reasons(id_acte), "an Annulation")
    return serialize(new_root("Annulation", {"IDActe": id_acte}))


def build_demande_classification(classification_date: date | None = None) -> bytes:
    """7-1 ``DemandeClassification``: ask for the classification newer than this date.

    Without a date the request has no ``DateClassification`` (the schema allows it).
    """
    root = new_root("DemandeClassification")
    if classification_date is not None:
        sub(root, "DateClassification", classification_date)
    return serialize(root)
