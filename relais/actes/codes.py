"""@CTES code tables: namespaces, acte natures, business message types, envelopes.

Sources: ``shared/domain/protocols.md`` §1.2 (natures) and §1.3 (message types,
after the S²LOW ``TypeMessageMetier`` enum cross-checked with STELA's ``Flux``
and the schema's root elements).

The 7-2 / 7-3 assignment follows the code of the S²LOW enum (``RetourClassification``
is 7-2, ``ReponseClassificationSansChangement`` 7-3); its comments say the
opposite, and live traffic has not settled it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ACTES_NS = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216"
INSEE_NS = "http://xml.insee.fr/schema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP: dict[str, str] = {"actes": ACTES_NS, "insee": INSEE_NS, "xsi": XSI_NS}
SCHEMA_LOCATION = f"{ACTES_NS} actesv1_1.xsd"


class Direction(StrEnum):
    """Who sends a message."""

    COLLECTIVITE = "collectivite"
    PREFECTURE = "prefecture"


@dataclass(frozen=True)
class NatureActe:
    """A nature of acte: numeric ``CodeNatureActe``, two-letter abbreviation, label."""

    code: int
    abbreviation: str
    label: str


NATURES: tuple[NatureActe, ...] = (
    NatureActe(1, "DE", "Délibérations"),
    NatureActe(2, "AR", "Actes réglementaires"),
    NatureActe(3, "AI", "Actes individuels"),
    NatureActe(4, "CC", "Contrats, conventions et avenants"),
    NatureActe(5, "BF", "Documents budgétaires et financiers"),
    NatureActe(6, "AU", "Autres"),
)
NATURE_BY_CODE: dict[int, NatureActe] = {n.code: n for n in NATURES}
NATURE_BY_ABBREVIATION: dict[str, NatureActe] = {n.abbreviation: n for n in NATURES}


@dataclass(frozen=True)
class MessageType:
    """A business message: code such as ``1-2``, root element, sender and meaning."""

    code: str
    root: str
    sent_by: Direction
    meaning: str


_C = Direction.COLLECTIVITE
_P = Direction.PREFECTURE

MESSAGE_TYPES: tuple[MessageType, ...] = (
    MessageType("1-1", "Acte", _C, "transmission of an acte"),
    MessageType("1-2", "ARActe", _P, "acknowledgement of receipt of an acte"),
    MessageType("1-3", "AnomalieActe", _P, "acte-level rejection (anomaly)"),
    MessageType("2-1", "CourrierSimple", _P, "simple letter"),
    MessageType("2-2", "ReponseCourrierSimple", _C, "reply to a simple letter"),
    MessageType("3-1", "DemandePieceComplementaire", _P, "request for additional documents"),
    MessageType("3-2", "ARDemandePieceComplementaire", _C, "acknowledgement of the request"),
    MessageType("3-3", "RefusPieceComplementaire", _C, "explicit refusal to send documents"),
    MessageType("3-4", "PieceComplementaire", _C, "the additional documents"),
    MessageType("3-5", "ARPieceComplementaire", _P, "acknowledgement of 3-3 or 3-4"),
    MessageType("4-1", "LettreObservations", _P, "observations letter"),
    MessageType("4-2", "ARLettreObservations", _C, "acknowledgement of the observations letter"),
    MessageType("4-3", "RejetLettreObservations", _C, "explicit rejection of the observations"),
    MessageType("4-4", "ReponseLettreObservations", _C, "reply to the observations letter"),
    MessageType("4-5", "ARReponseRejetLettreObservations", _P, "acknowledgement of 4-3 or 4-4"),
    MessageType("5-1", "DefereTA", _P, "referral to the tribunal administratif"),
    MessageType("6-1", "Annulation", _C, "cancellation of a transmission"),
    MessageType("6-2", "ARAnnulation", _P, "acknowledgement of the cancellation"),
    MessageType("7-1", "DemandeClassification", _C, "request for the current classification"),
    MessageType("7-2", "RetourClassification", _P, "new classification"),
    MessageType("7-3", "ReponseClassificationSansChangement", _P, "classification unchanged"),
)
MESSAGE_TYPE_BY_CODE: dict[str, MessageType] = {m.code: m for m in MESSAGE_TYPES}
MESSAGE_TYPE_BY_ROOT: dict[str, MessageType] = {m.root: m for m in MESSAGE_TYPES}

# Envelopes have no business code; these pseudo codes name them in parsed messages.
ENVELOPE_CL = "enveloppe-cl"
ENVELOPE_MISILL = "enveloppe-misill"
ANOMALIE_ENVELOPPE = "anomalie-enveloppe"
ENVELOPE_ROOTS: dict[str, str] = {
    "EnveloppeCLMISILL": ENVELOPE_CL,
    "EnveloppeMISILLCL": ENVELOPE_MISILL,
    "AnomalieEnveloppe": ANOMALIE_ENVELOPPE,
}
ENVELOPE_DIRECTIONS: dict[str, Direction] = {
    ENVELOPE_CL: _C,
    ENVELOPE_MISILL: _P,
    ANOMALIE_ENVELOPPE: _P,
}

# The schema enumerates these for AnomalieEnveloppe/Nature; real traffic also has 999.
ANOMALIE_ENVELOPPE_NATURES: frozenset[str] = frozenset({"001", "002", "003", "004", "005", "100"})


def type_code_for_root(root: str) -> str | None:
    """The type code (``1-2``, ``enveloppe-cl``…) of a root element's local name."""
    message = MESSAGE_TYPE_BY_ROOT.get(root)
    if message is not None:
        return message.code
    return ENVELOPE_ROOTS.get(root)


def direction_of(type_code: str) -> Direction | None:
    """Who sends messages of ``type_code``."""
    message = MESSAGE_TYPE_BY_CODE.get(type_code)
    if message is not None:
        return message.sent_by
    return ENVELOPE_DIRECTIONS.get(type_code)
