"""The préfecture's side of @CTES, which only the sandbox TdT emits.

1-2 ``ARActe``, 1-3 ``AnomalieActe``, 2-1, 3-1, 4-1, 5-1 (the prefecture's letters), 3-5 and
4-5 (its acknowledgements of the member's replies), 6-2 ``ARAnnulation``, 7-3
``ReponseClassificationSansChangement``, ``EnveloppeMISILLCL`` and ``AnomalieEnveloppe``.
Same conventions as :mod:`relais.actes.xml_build` (whose element helpers they share): ISO-8859-1
bytes, validated against the ACTES schema before returning (``ValidationError`` otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from lxml import etree

from relais.actes.codes import INSEE_NS
from relais.actes.ids import department_reasons, id_acte_reasons
from relais.actes.metadata import ActeMetadata
from relais.actes.xml_build import (
    Referent,
    arrondissement_reasons,
    courrier_root,
    courrier_with_document,
    donnees_acte,
    formulaires_element,
    referent_element,
)
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


def acte_recu_element(parent: etree._Element, acte_recu: ActeMetadata | bytes) -> None:
    element = sub(parent, "ActeRecu")
    if isinstance(acte_recu, ActeMetadata):
        donnees_acte(element, acte_recu)
    else:
        copy_content(parse_trusted(acte_recu, "Acte"), element)


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
    acte_recu_element(root, acte_recu)
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
    acte_recu_element(root, acte_recu)
    sub(root, "ClassificationDateVersionEnCours", classification_date)
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
            reasons.extend(arrondissement_reasons(arrondissement))
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
    referent_element(emetteur, referent)
    formulaires_element(root, file_names)
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


def build_courrier_simple(id_acte: str, courrier_date: date, document_file: str) -> bytes:
    """2-1 ``CourrierSimple``: a simple letter from the prefecture about an acte."""
    return courrier_with_document("CourrierSimple", id_acte, courrier_date, document_file)


def build_demande_piece_complementaire(
    id_acte: str, courrier_date: date, description: str, document_file: str
) -> bytes:
    """3-1 ``DemandePieceComplementaire``: the prefecture asks for more documents."""
    root = courrier_root("DemandePieceComplementaire", id_acte, courrier_date)
    sub(root, "DescriptionPieces", free_text(description, "description"))
    file_element(root, "Document", document_file)
    return serialize(root)


def build_lettre_observations(
    id_acte: str, courrier_date: date, motif: str, document_file: str
) -> bytes:
    """4-1 ``LettreObservations``: the prefecture's observations on an acte."""
    root = courrier_root("LettreObservations", id_acte, courrier_date)
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
