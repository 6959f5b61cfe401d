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
Prefecture side (used by the sandbox TdT): 1-2, 1-3, 2-1, 3-1, 3-5, 4-1, 4-5,
5-1, 6-2, 7-3, ``build_envelope_pref`` and ``build_anomalie_enveloppe``; the
7-2 builder is ``relais.actes.classification.build_retour_classification``.

``DateCourrierPref`` in the collectivité replies is the date of the prefecture
letter being answered (the schema only says "date du courrier"; STELA writes
the day of the reply there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from lxml import etree

from relais.actes.codes import INSEE_NS
from relais.actes.ids import department_reasons, id_acte_reasons
from relais.actes.metadata import DEFAULT_TYPOLOGY, ActeMetadata
from relais.actes.xml_write import (
    copy_content,
    file_element,
    free_text,
    new_root,
    parse_trusted,
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
    "build_acte",
    "build_annulation",
    "build_anomalie_acte",
    "build_anomalie_enveloppe",
    "build_ar_acte",
    "build_ar_annulation",
    "build_ar_demande_pc",
    "build_ar_lettre_observations",
    "build_ar_piece_complementaire",
    "build_ar_reponse_rejet_lettre_observations",
    "build_courrier_simple",
    "build_defere_ta",
    "build_demande_classification",
    "build_demande_piece_complementaire",
    "build_envelope_cl",
    "build_envelope_pref",
    "build_lettre_observations",
    "build_piece_complementaire",
    "build_refus_pc",
    "build_rejet_lettre_observations",
    "build_reponse_classification_sans_changement",
    "build_reponse_courrier_simple",
    "build_reponse_lettre_observations",
]


@dataclass(frozen=True)
class Referent:
    """A contact person in an envelope (every part optional)."""

    nom: str | None = None
    telephone: str | None = None
    email: str | None = None


# --- 1-1 Acte and its echo -------------------------------------------------------------


def _donnees_acte(element: etree._Element, meta: ActeMetadata) -> None:
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


def _acte_recu(parent: etree._Element, acte_recu: ActeMetadata | bytes) -> None:
    element = sub(parent, "ActeRecu")
    if isinstance(acte_recu, ActeMetadata):
        _donnees_acte(element, acte_recu)
    else:
        copy_content(parse_trusted(acte_recu, "Acte"), element)


def build_acte(meta: ActeMetadata) -> bytes:
    """1-1 ``Acte``: the metadata file of a transmitted acte (with ``DocumentPapier``)."""
    root = new_root("Acte")
    _donnees_acte(root, meta)
    return serialize(root)


def build_ar_acte(
    id_acte: str,
    reception_date: date,
    acte_recu: ActeMetadata | bytes,
    classification_date: date,
) -> bytes:
    """1-2 ``ARActe``: the prefecture acknowledges an acte.

    ``acte_recu`` is the acte echoed in ``ActeRecu``: its metadata, or the raw
    1-1 ``Acte`` XML received (copied as is). ``classification_date`` is the
    classification version the prefecture currently accepts.
    """
    require(id_acte_reasons(id_acte), "an ARActe")
    root = new_root("ARActe", {"IDActe": id_acte, "DateReception": reception_date})
    _acte_recu(root, acte_recu)
    sub(root, "ClassificationDateVersionEnCours", classification_date)
    return serialize(root)


def build_anomalie_acte(
    id_acte: str | None,
    anomaly_date: date,
    nature: str,
    detail: str | None,
    acte_recu: ActeMetadata | bytes,
    classification_date: date,
) -> bytes:
    """1-3 ``AnomalieActe``: the prefecture rejects an acte.

    ``nature`` is the 3-digit anomaly code (``002``: stale classification date).
    The schema gives ``AnomalieActe`` no IDActe: ``id_acte`` is only checked
    (when given) and is not written; the acte is identified by ``ActeRecu``.
    """
    reasons = id_acte_reasons(id_acte) if id_acte is not None else []
    if not (len(nature) == 3 and nature.isascii() and nature.isdigit()):
        reasons.append(Reason("nature", "format", f"an anomaly nature is 3 digits, got {nature!r}"))
    require(reasons, "an AnomalieActe")
    root = new_root("AnomalieActe")
    sub(root, "Date", anomaly_date)
    sub(root, "Nature", nature)
    if detail is not None:
        sub(root, "Detail", free_text(detail, "detail"))
    _acte_recu(root, acte_recu)
    sub(root, "ClassificationDateVersionEnCours", classification_date)
    return serialize(root)


# --- Envelopes -------------------------------------------------------------------------


def _referent(parent: etree._Element, referent: Referent | None) -> None:
    if referent is None:
        return
    element = sub(parent, "Referent")
    if referent.nom is not None:
        sub(element, "Nom", free_text(referent.nom, "referent.nom"))
    if referent.telephone is not None:
        sub(element, "Telephone", free_text(referent.telephone, "referent.telephone"))
    if referent.email is not None:
        sub(element, "Email", referent.email)


def _formulaires(parent: etree._Element, file_names: Sequence[str]) -> None:
    require(
        [] if file_names else [Reason("file_names", "required", "at least one message file")],
        "an envelope",
    )
    element = sub(parent, "FormulairesEnvoyes")
    for name in file_names:
        file_element(element, "Formulaire", name)


def _arrondissement_reasons(value: int) -> list[Reason]:
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
        *_arrondissement_reasons(arrondissement),
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
    _referent(emetteur, referent)
    adresses = sub(root, "AdressesRetour")
    for email in return_emails:
        sub(adresses, "Email", email)
    _formulaires(root, file_names)


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


def build_envelope_pref(
    department: str,
    destinataire_siren: str,
    file_names: Sequence[str],
    *,
    emitter: Literal["pref", "sous-pref", "sgar"] = "pref",
    arrondissement: int | None = None,
    referent: Referent | None = None,
) -> bytes:
    """``EnveloppeMISILLCL``: the envelope of prefecture messages to a collectivité.

    The emitter is a préfecture (``IDPref``), a sous-préfecture (``IDSousPref``,
    needs ``arrondissement``) or a SGAR (``IDSGAR``).
    """
    reasons = [*department_reasons(department), *siren_reasons(destinataire_siren)]
    if emitter == "sous-pref":
        if arrondissement is None:
            reasons.append(Reason("arrondissement", "required", "a sous-préfecture needs one"))
        else:
            reasons.extend(_arrondissement_reasons(arrondissement))
    require(reasons, "an EnveloppeMISILLCL")
    root = new_root("EnveloppeMISILLCL")
    emetteur = sub(root, "Emetteur")
    if emitter == "sous-pref" and arrondissement is not None:
        sub(
            emetteur,
            "IDSousPref",
            attrs={"Departement": department, "Arrondissement": arrondissement},
        )
    else:
        sub(
            emetteur, "IDSGAR" if emitter == "sgar" else "IDPref", attrs={"Departement": department}
        )
    _referent(emetteur, referent)
    _formulaires(root, file_names)
    sub(root, "Destinataire", attrs={qname("SIREN", INSEE_NS): destinataire_siren})
    return serialize(root)


def build_anomalie_enveloppe(
    anomaly_date: date, nature: str, detail: str | None, enveloppe_recue: bytes
) -> bytes:
    """``AnomalieEnveloppe``: the ministry rejects an envelope, echoing it.

    ``enveloppe_recue`` is the raw ``EnveloppeCLMISILL`` received. The schema
    only admits natures 001–005 and 100 (real traffic also has 999, which
    Relais cannot emit validly).
    """
    root = new_root("AnomalieEnveloppe")
    sub(root, "Date", anomaly_date)
    sub(root, "Nature", nature)
    if detail is not None:
        sub(root, "Detail", free_text(detail, "detail"))
    copy_content(parse_trusted(enveloppe_recue, "EnveloppeCLMISILL"), sub(root, "EnveloppeRecue"))
    return serialize(root)


# --- Prefecture letters (2-1, 3-1, 4-1, 5-1) and acknowledgements -----------------------


def _courrier(root_name: str, id_acte: str, courrier_date: date) -> etree._Element:
    require(id_acte_reasons(id_acte), f"a {root_name}")
    return new_root(root_name, {"IDActe": id_acte, "DateCourrierPref": courrier_date})


def _courrier_with_document(
    root_name: str, id_acte: str, courrier_date: date, document_file: str
) -> bytes:
    root = _courrier(root_name, id_acte, courrier_date)
    file_element(root, "Document", document_file)
    return serialize(root)


def build_courrier_simple(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """2-1 ``CourrierSimple``: a simple letter from the prefecture about an acte."""
    return _courrier_with_document("CourrierSimple", id_acte, courrier_date, document_file)


def build_demande_piece_complementaire(
    id_acte: str, courrier_date: date, description: str, document_file: str
) -> bytes:
    """3-1 ``DemandePieceComplementaire``: the prefecture asks for more documents."""
    root = _courrier("DemandePieceComplementaire", id_acte, courrier_date)
    sub(root, "DescriptionPieces", free_text(description, "description"))
    file_element(root, "Document", document_file)
    return serialize(root)


def build_lettre_observations(
    id_acte: str, courrier_date: date, motif: str, document_file: str
) -> bytes:
    """4-1 ``LettreObservations``: the prefecture's observations on an acte."""
    root = _courrier("LettreObservations", id_acte, courrier_date)
    sub(root, "Motif", free_text(motif, "motif"))
    file_element(root, "Document", document_file)
    return serialize(root)


def build_defere_ta(
    id_acte: str, depot_date: date, nature_illegalite: str, pieces_jointes: Sequence[str]
) -> bytes:
    """5-1 ``DefereTA``: the acte was referred to the tribunal administratif."""
    require(id_acte_reasons(id_acte), "a DefereTA")
    root = new_root("DefereTA", {"IDActe": id_acte})
    sub(root, "DateDepot", depot_date)
    sub(root, "NatureIllegalite", free_text(nature_illegalite, "nature_illegalite"))
    pieces = sub(root, "PiecesJointes")
    for name in pieces_jointes:
        file_element(pieces, "PieceJointe", name)
    return serialize(root)


def _ar_reponse_cl(
    root_name: str, id_acte: str, reception_date: date, courrier_date: date
) -> bytes:
    require(id_acte_reasons(id_acte), f"a {root_name}")
    root = new_root(root_name, {"DateReception": reception_date})
    sub(root, "InfosCourrierPref", attrs={"IDActe": id_acte, "DateCourrierPref": courrier_date})
    return serialize(root)


def build_ar_piece_complementaire(id_acte: str, reception_date: date, courrier_date: date) -> bytes:
    """3-5 ``ARPieceComplementaire``: the prefecture acknowledges a 3-3 or 3-4."""
    return _ar_reponse_cl("ARPieceComplementaire", id_acte, reception_date, courrier_date)


def build_ar_reponse_rejet_lettre_observations(
    id_acte: str, reception_date: date, courrier_date: date
) -> bytes:
    """4-5 ``ARReponseRejetLettreObservations``: the prefecture acknowledges a 4-3 or 4-4."""
    return _ar_reponse_cl(
        "ARReponseRejetLettreObservations", id_acte, reception_date, courrier_date
    )


def build_ar_annulation(id_acte: str, reception_date: date | None = None) -> bytes:
    """6-2 ``ARAnnulation``: the prefecture acknowledges a cancellation (today by default)."""
    require(id_acte_reasons(id_acte), "an ARAnnulation")
    root = new_root(
        "ARAnnulation",
        {"IDActe": id_acte, "DateReception": reception_date or date.today()},
    )
    return serialize(root)


def build_reponse_classification_sans_changement(classification_date: date) -> bytes:
    """7-3 ``ReponseClassificationSansChangement``: the classification is up to date."""
    root = new_root("ReponseClassificationSansChangement")
    sub(root, "DateClassification", classification_date)
    return serialize(root)


# --- Collectivité replies (2-2, 3-x, 4-x, 6-1, 7-1) --------------------------------------


def build_reponse_courrier_simple(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """2-2 ``ReponseCourrierSimple``: the collectivité answers a simple letter."""
    return _courrier_with_document("ReponseCourrierSimple", id_acte, courrier_date, document_file)


def build_ar_demande_pc(id_acte: str, courrier_date: date) -> bytes:
    """3-2 ``ARDemandePieceComplementaire``: the collectivité acknowledges a 3-1."""
    return serialize(_courrier("ARDemandePieceComplementaire", id_acte, courrier_date))


def build_refus_pc(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """3-3 ``RefusPieceComplementaire``: explicit refusal to send the documents."""
    return _courrier_with_document(
        "RefusPieceComplementaire", id_acte, courrier_date, document_file
    )


def build_piece_complementaire(
    id_acte: str, courrier_date: date, document_files: Sequence[str]
) -> bytes:
    """3-4 ``PieceComplementaire``: the requested documents (at least one)."""
    require(
        [] if document_files else [Reason("document_files", "required", "at least one file")],
        "a PieceComplementaire",
    )
    root = _courrier("PieceComplementaire", id_acte, courrier_date)
    documents = sub(root, "Documents")
    for name in document_files:
        file_element(documents, "Document", name)
    return serialize(root)


def build_ar_lettre_observations(id_acte: str, courrier_date: date) -> bytes:
    """4-2 ``ARLettreObservations``: the collectivité acknowledges a 4-1."""
    return serialize(_courrier("ARLettreObservations", id_acte, courrier_date))


def build_rejet_lettre_observations(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """4-3 ``RejetLettreObservations``: explicit refusal to answer the observations."""
    return _courrier_with_document("RejetLettreObservations", id_acte, courrier_date, document_file)


def build_reponse_lettre_observations(
    id_acte: str, courrier_date: date, document_file: str
) -> bytes:
    """4-4 ``ReponseLettreObservations``: the collectivité answers the observations."""
    return _courrier_with_document(
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
