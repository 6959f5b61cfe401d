"""What the TdT connector sends and what it returns.

Inputs (:class:`ActeForm`, :class:`ReplyForm`, :class:`UploadFile`) mirror the
S²LOW form fields; results are frozen dataclasses that always carry the partner
name, the HTTP status, the elapsed seconds and the raw reply bytes, so callers
can log or archive exactly what the TdT answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Protocol

from relais.actes.xml_parse import ActesMessage, parse_message


class TransactionStatus(IntEnum):
    """S²LOW transaction states (``class/actes/ActesStatusSQL.php`` and its ``actes_status`` table).

    17 and 18 are where an acte starts instead of 1 when the account posts
    ``en_attente`` or must sign before posting (``ActesTransaction::save``);
    21 is where a prefecture message that needs no acknowledgement rests
    (courrier simple, déféré). None of them is final.
    """

    ERROR = -1
    CANCELLED = 0
    POSTED = 1
    WAITING_TRANSMISSION = 2
    TRANSMITTED = 3
    ACKNOWLEDGED = 4
    VALIDATED = 5
    DOCUMENT_RECEIVED = 7
    ACKNOWLEDGEMENT_SENT = 8
    PREFECTURE_DOCUMENT_ACKNOWLEDGED = 11
    SENT_TO_SAE = 12
    ARCHIVED = 13
    ARCHIVING_ERROR = 14
    DESTROYED = 16
    WAITING_POST = 17
    WAITING_SIGNATURE = 18
    WAITING_SAE = 19
    SAE_SENDING_ERROR = 20
    DOCUMENT_RECEIVED_NO_ACK = 21
    SAE_ERROR_DOCUMENTS_UNAVAILABLE = 22


FINAL_STATUSES = frozenset(
    {TransactionStatus.ERROR, TransactionStatus.CANCELLED, TransactionStatus.ACKNOWLEDGED}
)
"""States after which an acte's transmission outcome no longer changes (archiving aside)."""


class FileLike(Protocol):
    """Anything with a name, bytes or an async byte stream, and a media type."""

    @property
    def name(self) -> str: ...

    @property
    def content(self) -> bytes | AsyncIterable[bytes]: ...

    @property
    def media_type(self) -> str: ...


@dataclass(frozen=True)
class UploadFile:
    """One file of a submission.

    ``content`` is either the bytes or an async stream of chunks. A stream can
    be read only once: a retried call needs a fresh ``UploadFile``. Give
    ``size`` with a stream so the request carries a Content-Length instead of
    being sent chunked.
    """

    name: str
    content: bytes | AsyncIterable[bytes]
    media_type: str = "application/pdf"
    size: int | None = None


@dataclass(frozen=True)
class ActeForm:
    """The form fields of ``actes_transac_create.php``.

    ``classification`` holds the matière codes, level 1 first (``classif1``…);
    ``type_acte`` is the typology code of the main document (``99_DE``…) and
    ``type_pj`` one typology code per annex, in the order of the annex files.
    """

    nature_code: int
    number: str
    subject: str
    decision_date: date
    classification: tuple[int, ...]
    document_papier: bool = False
    type_acte: str | None = None
    type_pj: tuple[str, ...] = ()
    en_attente: bool = False


@dataclass(frozen=True)
class ReplyForm:
    """Extra fields of a member reply (``actes_transac_reponse_create.php``).

    S²LOW wants a typology for the reply letter (``type_acte``) and one per
    further document (``type_pj``), like an acte; ``99_AU`` by default.
    """

    type_acte: str = "99_AU"
    type_pj: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class PostResult:
    """The TdT accepted a submission (an acte, a reply or a cancellation)."""

    partner: str
    transaction_id: str
    http_status: int
    elapsed: float
    raw: bytes


@dataclass(frozen=True)
class StatusResult:
    """One status reply of ``actes_transac_get_status.php``.

    ``document`` is the XML the TdT returned with the status (the ``ARActe``
    for state 4, an ``AnomalieActe`` or ``ARAnnulation`` when the TdT has
    one), byte for byte; ``message`` is the error text that follows for
    state -1. ``raw`` is the whole reply.
    """

    partner: str
    transaction_id: str
    status: int
    http_status: int
    elapsed: float
    raw: bytes
    document: bytes | None = None
    message: str = ""

    @property
    def status_name(self) -> str:
        """Symbolic name of the state, or ``UNKNOWN_<n>`` for a state S²LOW does not list."""
        try:
            return TransactionStatus(self.status).name
        except ValueError:
            return f"UNKNOWN_{self.status}"

    @property
    def is_final(self) -> bool:
        """True once polling this transaction can stop (acknowledged, error or cancelled)."""
        return self.status in FINAL_STATUSES

    def parsed_document(self) -> ActesMessage | None:
        """``document`` read leniently (``ARActe``, ``AnomalieActe``…); None without one.

        Raises :class:`PartnerReplyError` when the document is not an ACTES message.
        """
        return parse_message(self.document) if self.document is not None else None


@dataclass(frozen=True)
class PrefectureDocumentRef:
    """One unread prefecture message, a row of ``api/list_document_prefecture.php``.

    The row is S²LOW's ``actes_transactions`` row (``ActesTransactionsSQL::
    listDocumentPrefectureNonLu``): ``type`` is the transaction type, ``'2'``
    (courrier simple), ``'3'`` (demande de pièces complémentaires), ``'4'``
    (lettre d'observations) or ``'5'`` (déféré); the message code (``3-1``…)
    is only in the XML inside the archive. ``related_transaction_id`` is the
    acte's transaction, ``unique_id`` its IDActe, ``last_status_id`` the
    message's own state (21 for a message that needs no acknowledgement).
    """

    id: str
    type: str
    related_transaction_id: str | None
    number: str | None = None
    unique_id: str | None = None
    last_status_id: int | None = None


@dataclass(frozen=True)
class TransactionRef:
    """One row of ``api/list_actes.php`` (``ActesAPIController::listActesAction``).

    S²LOW sends every value as a string: ``type`` is the transaction type
    (``'1'`` for an acte, ``'6'`` for a cancellation…, not the nature),
    ``decision_date`` its ``date`` column, ``nature_descr`` the nature's label.
    ``status`` is the ``status_id`` the listing was asked for.
    """

    id: str
    type: str
    number: str
    decision_date: date | None
    status: int
    subject: str = ""
    nature_descr: str = ""
    classification: str = ""
