"""What the i-Parapheur connector takes and returns (no zeep objects leave the connector)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class Visibility(enum.StrEnum):
    """``Visibilite`` of a dossier (WSDL enumeration)."""

    PUBLIC = "PUBLIC"
    SERVICE = "SERVICE"
    CONFIDENTIEL = "CONFIDENTIEL"


@dataclass(frozen=True)
class Annex:
    """A ``DocAnnexe``: name (a ``DossierID``-shaped name), bytes and MIME type."""

    name: str
    content: bytes
    content_type: str = "application/pdf"
    encoding: str = "UTF-8"


@dataclass(frozen=True)
class ActeMetadata:
    """``MetaDataTdtACTES``: what i-Parapheur needs to pass an acte on to @CTES."""

    nature: str
    classification: str
    date: date
    objet: str


@dataclass(frozen=True)
class DossierRequest:
    """One ``CreerDossier``: the document to sign and the member's circuit settings.

    ``acte`` is set for actes, ``xpath_for_xml_signature`` for a PES (e.g.
    ``//Bordereau`` or ``.``, as Pastell chooses), ``deadline`` becomes ``DateLimite``.
    """

    dossier_id: str
    technical_type: str
    sub_type: str
    document: bytes
    document_content_type: str
    document_name: str | None = None
    visibility: Visibility = Visibility.SERVICE
    deadline: date | None = None
    annexes: tuple[Annex, ...] = ()
    acte: ActeMetadata | None = None
    xpath_for_xml_signature: str | None = None
    visual_pdf: bytes | None = None
    public_annotation: str | None = None
    private_annotation: str | None = None
    sender_email: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class CreateOutcome(enum.StrEnum):
    """What ``CreerDossier`` did: created now, or found already there (a retried create)."""

    CREATED = "created"
    ALREADY_EXISTS = "already_exists"


class SignatureState(enum.StrEnum):
    """Where a dossier stands, from the last ``LogDossier`` of ``GetHistoDossier``."""

    FINISHED = "finished"  # ``Archive``: circuit over, fetch with GetDossier then archive
    REJECTED = "rejected"  # ``Rejet*``: a viewer, signer, seal or mail step refused it
    IN_PROGRESS = "in_progress"  # any other status (NonLu, Lu, Signe, Vise, EnCoursVisa…)
    NOT_FOUND = "not_found"  # no history: i-Parapheur does not hold this DossierID


class Rejecter(enum.StrEnum):
    """Which step refused a rejected dossier (from its ``Rejet*`` status)."""

    VIEWER = "viewer"  # RejetVisa
    SIGNER = "signer"  # RejetSignataire, RejetSignataireExterne
    SEAL = "seal"  # RejetCachet
    SECURE_MAIL = "secure_mail"  # RejetMailSecPastell
    OTHER = "other"


@dataclass(frozen=True)
class LogEntry:
    """One ``LogDossier``: when, who (``nom``: an actor's name in real histories), status."""

    timestamp: datetime | None
    name: str
    status: str
    annotation: str


@dataclass(frozen=True)
class DossierStatus:
    """A dossier's typed state, its raw last status and, when rejected, who and why."""

    dossier_id: str
    state: SignatureState
    status: str | None = None
    annotation: str | None = None
    actor: str | None = None
    at: datetime | None = None
    rejected_by: Rejecter | None = None
    signed_at: datetime | None = None
    history: tuple[LogEntry, ...] = ()


@dataclass(frozen=True)
class SignedDossier:
    """What ``GetDossier`` returned after the circuit.

    ``signature`` is the detached signature (``SignatureDocPrincipal``: PKCS#7 or a zip)
    for a PDF; ``signed_file`` the signed XML (``FichierPES``) for a PES, else the
    ``DocPrincipal`` i-Parapheur sent back. ``bordereau`` is the last ``DocAnnexe``
    (i-Parapheur appends the signature bordereau after the member's annexes).
    """

    dossier_id: str
    signature: bytes | None
    signature_content_type: str | None
    signed_file: bytes | None
    signed_file_name: str | None
    is_xml: bool
    bordereau: bytes | None
    bordereau_name: str | None
    public_annotation: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
