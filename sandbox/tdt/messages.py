"""The @CTES files the sandbox TdT produces, built with :mod:`relais.actes`.

Every XML comes from the schema-validating builders of ``relais.actes``; this
module only decides names, dates and contents, and packs prefecture messages
and member replies into tar.gz archives the way a TdT lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from relais.actes.archive import (
    Transmission,
    archive_file_name,
    build_transmission,
    envelope_file_name,
    pack_archive,
    read_transmission,
)
from relais.actes.classification import Classification, build_retour_classification
from relais.actes.metadata import ActeMetadata
from relais.actes.xml_build import (
    build_annulation,
    build_ar_demande_pc,
    build_ar_lettre_observations,
    build_demande_classification,
    build_envelope_cl,
    build_piece_complementaire,
    build_refus_pc,
    build_rejet_lettre_observations,
    build_reponse_courrier_simple,
    build_reponse_lettre_observations,
)
from relais.documents import sample_pdf
from sandbox.tdt.config import SandboxAccount
from sandbox.tdt.files import member, write_archive
from sandbox.tdt.prefecture_xml import (
    build_anomalie_acte,
    build_ar_acte,
    build_ar_annulation,
    build_ar_piece_complementaire,
    build_ar_reponse_rejet_lettre_observations,
    build_courrier_simple,
    build_defere_ta,
    build_demande_piece_complementaire,
    build_envelope_pref,
    build_lettre_observations,
)
from sandbox.tdt.validation import ActeSubmission


@dataclass(frozen=True)
class Packed:
    """One message as the TdT keeps it: the business XML and the archive holding it."""

    type_code: str
    message_xml: bytes
    archive_name: str
    archive_bytes: bytes


def _file_names(submission: ActeSubmission) -> list[str]:
    """Names under which the posted files enter the archive builder (S²LOW renames them
    after the typology and the acte, with the extension of the sniffed content type)."""
    files = (submission.main, *submission.annexes)
    return [f"file{n}.{f.extension}" for n, f in enumerate(files)]


def acte_metadata(
    submission: ActeSubmission, account: SandboxAccount, classification: Classification
) -> ActeMetadata:
    """The ``ActeMetadata`` a TdT derives from a validated post and the member's account."""
    names = _file_names(submission)
    return ActeMetadata(
        siren=account.siren,
        department=account.department,
        decision_date=submission.decision_date,
        numero_interne=submission.number,
        nature_code=submission.nature_code,
        matieres=submission.matieres,
        objet=submission.subject,
        classification_date=classification.date_version,
        document_papier=submission.document_papier,
        main_file=names[0],
        annex_files=tuple(names[1:]),
        main_typology=submission.type_acte,
        annex_typologies=submission.type_pj,
    )


def acte_transmission(
    submission: ActeSubmission,
    account: SandboxAccount,
    classification: Classification,
    *,
    trigram: str,
    day: date,
    sequence: int,
) -> Transmission:
    """The 1-1 transmission (names, envelope, ``Acte`` XML); ValidationError if unbuildable.

    Its ``archive_bytes`` hold the documents' names with no content: the archive itself is
    written to disk by :func:`write_acte_archive`, the documents read from their uploads in
    chunks.
    """
    names = _file_names(submission)
    documents = dict.fromkeys(names, b"")
    return build_transmission(
        acte_metadata(submission, account, classification),
        documents,
        trigram=trigram,
        transmission_date=day,
        sequence=sequence,
        arrondissement=account.arrondissement,
        nature_collectivite=account.nature_collectivite,
        return_emails=[account.return_email],
    )


def write_acte_archive(path: Path, transmission: Transmission,
                       submission: ActeSubmission) -> int:
    """Write the acte's tar.gz to ``path`` as S²LOW does (``tar cf - … | gzip -9``: envelope,
    message XML, acte, annexes), the documents copied from their uploads in chunks; returns
    its size in bytes (what ``checkArchiveSize`` compares with the limit)."""
    xml = read_transmission(transmission.archive_bytes)
    envelope, message = transmission.member_names[:2]
    uploads = (submission.main, *submission.annexes)
    documents = [
        (name, posted.size, posted.upload.opened())
        for name, posted in zip(transmission.member_names[2:], uploads, strict=True)
    ]
    return write_archive(path, [member(envelope, xml[envelope]),
                                member(message, xml[message]), *documents])


def ar_acte(transmission: Transmission, day: date, classification: Classification) -> bytes:
    """1-2 ``ARActe`` echoing the acte as transmitted."""
    return build_ar_acte(
        transmission.id_acte, day, transmission.metadata, classification.date_version
    )


def anomalie_acte(
    transmission: Transmission,
    day: date,
    classification: Classification,
    *,
    nature: str,
    detail: str,
) -> bytes:
    """1-3 ``AnomalieActe`` rejecting the acte as transmitted."""
    return build_anomalie_acte(
        transmission.id_acte,
        day,
        nature,
        detail,
        transmission.metadata,
        classification.date_version,
    )


def _pref_envelope_name(account: SandboxAccount, day: date, sequence: int) -> str:
    return (
        f"TACT--SPREF{account.department}{account.arrondissement}-{account.siren}"
        f"-{day:%Y%m%d}-{sequence}.xml"
    )


def prefecture_message(
    type_code: str, id_acte: str, account: SandboxAccount, day: date, sequence: int
) -> Packed:
    """A prefecture message (2-1, 3-1, 4-1, 5-1) about ``id_acte`` with its PDF, packed."""
    base = f"{id_acte}-{type_code}"
    pdf_name = f"{base}_1.pdf"
    pdf = sample_pdf(f"Prefecture message {type_code} about {id_acte}")
    if type_code == "2-1":
        xml = build_courrier_simple(id_acte, day, pdf_name)
    elif type_code == "3-1":
        xml = build_demande_piece_complementaire(
            id_acte, day, "Merci de transmettre l'annexe financière signée.", pdf_name
        )
    elif type_code == "4-1":
        xml = build_lettre_observations(
            id_acte, day, "Observations sur la compétence de l'organe délibérant.", pdf_name
        )
    elif type_code == "5-1":
        xml = build_defere_ta(id_acte, day, "Incompétence de l'auteur de l'acte.", [pdf_name])
    else:
        raise ValueError(f"not a prefecture message type: {type_code}")
    message_name = f"{base}_0.xml"
    envelope_name = _pref_envelope_name(account, day, sequence)
    envelope = build_envelope_pref(account.department, account.siren, [message_name])
    archive = pack_archive([(envelope_name, envelope), (message_name, xml), (pdf_name, pdf)])
    return Packed(type_code, xml, envelope_name.removesuffix(".xml") + ".tar.gz", archive)


def _collectivite_archive(
    type_code: str,
    xml: bytes,
    base: str,
    files: Sequence[tuple[str, bytes]],
    account: SandboxAccount,
    *,
    trigram: str,
    day: date,
    sequence: int,
) -> Packed:
    message_name = f"{base}_0.xml"
    envelope_name = envelope_file_name(account.siren, day, sequence)
    envelope = build_envelope_cl(
        account.siren,
        account.department,
        account.arrondissement,
        account.nature_collectivite,
        [message_name],
        [account.return_email],
    )
    members = [(envelope_name, envelope), (message_name, xml), *files]
    return Packed(type_code, xml, archive_file_name(trigram, envelope_name), pack_archive(members))


def member_reply(
    type_code: str,
    id_acte: str,
    courrier_date: date,
    documents: Sequence[tuple[str, bytes]],
    account: SandboxAccount,
    *,
    trigram: str,
    day: date,
    sequence: int,
) -> Packed:
    """A member's reply (2-2, 3-2, 3-3, 3-4, 4-2, 4-3, 4-4) with its documents, packed.

    ``documents`` are (uploaded name, bytes); they are renamed ``{base}_{n}.{ext}``.
    Raises ValueError for a type that needs a document when none is given.
    """
    base = f"{id_acte}-{type_code}"
    renamed = [
        (f"{base}_{n}.{name.rsplit('.', 1)[-1].lower() if '.' in name else 'pdf'}", content)
        for n, (name, content) in enumerate(documents, start=1)
    ]
    names = [name for name, _ in renamed]
    needs_document = type_code in {"2-2", "3-3", "3-4", "4-3", "4-4"}
    if needs_document and not names:
        raise ValueError(f"a {type_code} reply needs a document")
    if type_code == "2-2":
        xml = build_reponse_courrier_simple(id_acte, courrier_date, names[0])
    elif type_code == "3-2":
        xml = build_ar_demande_pc(id_acte, courrier_date)
    elif type_code == "3-3":
        xml = build_refus_pc(id_acte, courrier_date, names[0])
    elif type_code == "3-4":
        xml = build_piece_complementaire(id_acte, courrier_date, names)
    elif type_code == "4-2":
        xml = build_ar_lettre_observations(id_acte, courrier_date)
    elif type_code == "4-3":
        xml = build_rejet_lettre_observations(id_acte, courrier_date, names[0])
    elif type_code == "4-4":
        xml = build_reponse_lettre_observations(id_acte, courrier_date, names[0])
    else:
        raise ValueError(f"not a member reply type: {type_code}")
    kept = renamed if needs_document else []
    return _collectivite_archive(
        type_code, xml, base, kept, account, trigram=trigram, day=day, sequence=sequence
    )


def reply_acknowledgement(
    type_code: str, id_acte: str, day: date, courrier_date: date
) -> bytes | None:
    """The prefecture's acknowledgement of a member reply (3-5, 4-5), if one is due."""
    if type_code in {"3-3", "3-4"}:
        return build_ar_piece_complementaire(id_acte, day, courrier_date)
    if type_code in {"4-3", "4-4"}:
        return build_ar_reponse_rejet_lettre_observations(id_acte, day, courrier_date)
    return None


def annulation(
    id_acte: str, account: SandboxAccount, *, trigram: str, day: date, sequence: int
) -> Packed:
    """6-1 ``Annulation`` of ``id_acte``, packed in its envelope."""
    xml = build_annulation(id_acte)
    return _collectivite_archive(
        "6-1", xml, f"{id_acte}-6-1", [], account, trigram=trigram, day=day, sequence=sequence
    )


def ar_annulation(id_acte: str, day: date) -> bytes:
    """6-2 ``ARAnnulation``."""
    return build_ar_annulation(id_acte, day)


def demande_classification(
    known: date | None, account: SandboxAccount, *, trigram: str, day: date, sequence: int
) -> Packed:
    """7-1 ``DemandeClassification`` asking for a classification newer than ``known``."""
    xml = build_demande_classification(known)
    base = f"{account.department}-{account.siren}----7-1"
    return _collectivite_archive(
        "7-1", xml, base, [], account, trigram=trigram, day=day, sequence=sequence
    )


def retour_classification(classification: Classification) -> bytes:
    """7-2 ``RetourClassification`` of ``classification`` (ValidationError if unbuildable)."""
    return build_retour_classification(classification)
