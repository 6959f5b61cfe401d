"""The hub's connector to a tiers de télétransmission speaking the S²LOW HTTP API.

One :class:`S2lowConnector` serves one TdT account (one member, or one account
shared by several members when the TdT allows it). It is given its
``httpx.AsyncClient``: TLS client certificate, HTTP Basic and timeouts are the
client's business (see :func:`connectors.tdt.client.build_tdt_client`).

Every call goes through :meth:`S2lowConnector._send`, the only place that talks
to httpx; failures come out as the Relais partner errors described in
:mod:`connectors.tdt.errors`. ``retriable`` on the raised error says whether
calling again later may succeed.

Delivery semantics, in short: reads (status, listings, documents, the
classification) are safe to repeat at will. Creations (an acte, a member reply,
a cancellation) are not idempotent on a real TdT: a creation that failed with
a *transient* error may nevertheless have been recorded. Pass an idempotency
key (honoured by the Relais sandbox, ignored by real TdTs) and, before
re-posting after an ambiguous failure, call :meth:`S2lowConnector.find_by_idempotency_key`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import httpx
import structlog

from connectors.tdt.errors import ko_error, map_transport_errors, status_error
from connectors.tdt.models import (
    ActeForm,
    FileLike,
    PostResult,
    PrefectureDocumentRef,
    ReplyForm,
    StatusResult,
    TransactionRef,
    TransactionStatus,
)
from connectors.tdt.multipart import MultipartBody
from connectors.tdt.replies import (
    check_xml_document,
    is_ko,
    parse_create_reply,
    parse_document_list,
    parse_ok_id_reply,
    parse_ok_text_reply,
    parse_status_reply,
    parse_transaction_list,
)
from connectors.tdt.text import encode_latin1
from relais.errors import Reason, ValidationError

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "X-Relais-Idempotency-Key"
"""Our header naming one logical creation (flow id + step); real TdTs ignore it."""

ACTES = "/modules/actes"
PATH_CREATE = f"{ACTES}/actes_transac_create.php"
PATH_STATUS = f"{ACTES}/actes_transac_get_status.php"
PATH_CANCEL = f"{ACTES}/actes_transac_cancel.php"
PATH_CLASSIFICATION_FETCH = f"{ACTES}/actes_classification_fetch.php"
PATH_CLASSIFICATION_REQUEST = f"{ACTES}/actes_classification_request.php"
PATH_REPLY_CREATE = f"{ACTES}/actes_transac_reponse_create.php"
PATH_GET_DOCUMENT = f"{ACTES}/actes_transac_get_document.php"
PATH_LIST_DOCUMENTS = f"{ACTES}/api/list_document_prefecture.php"
PATH_MARK_READ = f"{ACTES}/api/document_prefecture_mark_as_read.php"
PATH_LIST_TRANSACTIONS = f"{ACTES}/api/list_transactions.php"

REPLY_TYPES = frozenset({"2-2", "3-2", "3-3", "3-4", "4-2", "4-3", "4-4"})
"""Message types a member may send in reply to a prefecture message."""

_INACTIVE = frozenset({int(TransactionStatus.ERROR), int(TransactionStatus.CANCELLED)})


class S2lowConnector:
    """Calls of the S²LOW ACTES API for one TdT account.

    ``base_url`` is the TdT's root (``https://tdt.example.org``); paths are
    appended to it. ``partner`` names the TdT in errors and logs.
    """

    def __init__(self, client: httpx.AsyncClient, *, base_url: str, partner: str = "tdt") -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self.partner = partner

    # -- the one place that talks to httpx -------------------------------------------------

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        body: MultipartBody | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[httpx.Response, float]:
        headers: dict[str, str] = {}
        content: Any = None
        if body is not None:
            headers["Content-Type"] = body.content_type
            length = body.content_length
            if length is not None:
                headers["Content-Length"] = str(length)
            content = body
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        started = time.perf_counter()
        with map_transport_errors(self.partner, operation):
            response = await self._client.request(
                method,
                self._base_url + path,
                params=params,
                data=data,
                content=content,
                headers=headers,
            )
        elapsed = time.perf_counter() - started
        log.info(
            "tdt_call",
            partner=self.partner,
            operation=operation,
            http_status=response.status_code,
            elapsed_ms=round(elapsed * 1000, 1),
        )
        error = status_error(response, self.partner, operation)
        if error is not None:
            raise error
        return response, elapsed

    # -- actes ------------------------------------------------------------------------------

    async def post_acte(
        self,
        form: ActeForm,
        files: Sequence[FileLike],
        *,
        idempotency_key: str | None = None,
    ) -> PostResult:
        """Submit one acte; return the TdT's transaction id.

        ``files[0]`` is the main document (``acte_pdf_file``), the others are
        annexes (``acte_attachments[]``) in the order of ``form.type_pj``. When
        the await returns, the TdT has recorded the transaction in state 1
        (posted); transmission to the prefecture happens later (poll
        :meth:`get_status`). Raises :class:`ValidationError` before any call
        when the form cannot be encoded (a subject outside ISO-8859-1, no file,
        typologies not matching the annexes).

        Retrying: a :class:`PartnerPermanentError` means the TdT refused the
        acte; do not retry as is. After a transient error the acte may or may
        not have been recorded: retry with the same ``idempotency_key`` (the
        sandbox then answers the same id) or look it up first with
        :meth:`find_by_idempotency_key`. Cancelling the await leaves the same
        ambiguity. Async file streams are consumed: a retry needs fresh files.
        """
        body = MultipartBody(_acte_fields(form, len(files)), _acte_files(files))
        operation = "post_acte"
        response, elapsed = await self._send(
            operation, "POST", PATH_CREATE, body=body, idempotency_key=idempotency_key
        )
        transaction_id = parse_create_reply(
            response.content,
            partner=self.partner,
            operation=operation,
            status=response.status_code,
        )
        log.info(
            "tdt_acte_posted",
            partner=self.partner,
            transaction_id=transaction_id,
            number=form.number,
            idempotency_key=idempotency_key,
        )
        return PostResult(
            partner=self.partner,
            transaction_id=transaction_id,
            http_status=response.status_code,
            elapsed=elapsed,
            raw=response.content,
            idempotency_key=idempotency_key,
        )

    async def get_status(self, transaction_id: str) -> StatusResult:
        """The current state of a transaction, with the XML the TdT returned for it.

        A read: safe to repeat and to retry after any transient error. A
        ``KO`` reply (unknown transaction, no access) raises
        :class:`PartnerPermanentError`. States are not guaranteed to only move
        forward: a TdT (or the sandbox's duplicate fault) may answer an older
        state again, so callers keep the furthest state they have seen.
        """
        operation = "get_status"
        response, elapsed = await self._send(
            operation, "GET", PATH_STATUS, params={"transaction": transaction_id}
        )
        state, document, message = parse_status_reply(
            response.content,
            partner=self.partner,
            operation=operation,
            status=response.status_code,
        )
        return StatusResult(
            partner=self.partner,
            transaction_id=transaction_id,
            status=state,
            http_status=response.status_code,
            elapsed=elapsed,
            raw=response.content,
            document=document,
            message=message,
        )

    async def cancel(
        self, transaction_id: str, *, idempotency_key: str | None = None
    ) -> PostResult:
        """Ask the TdT to send an ``Annulation`` (6-1) for an acknowledged acte.

        Returns the id the TdT gives the cancellation. When the await returns
        the request is recorded; the acte reaches state 0 (cancelled) once the
        prefecture's ``ARAnnulation`` (6-2) arrives: poll :meth:`get_status` of
        the acte. Like every creation, a retry after a transient error may
        cancel twice on a real TdT (the second is refused with ``KO``); pass an
        ``idempotency_key`` for the sandbox.
        """
        operation = "cancel"
        response, elapsed = await self._send(
            operation,
            "POST",
            PATH_CANCEL,
            data={"api": "1", "id": transaction_id},
            idempotency_key=idempotency_key,
        )
        cancel_id = parse_ok_id_reply(
            response.content, partner=self.partner, operation=operation, status=response.status_code
        )
        return PostResult(
            partner=self.partner,
            transaction_id=cancel_id,
            http_status=response.status_code,
            elapsed=elapsed,
            raw=response.content,
            idempotency_key=idempotency_key,
        )

    # -- classification --------------------------------------------------------------------

    async def fetch_classification(self) -> bytes:
        """The member's current classification, the ``RetourClassification`` (7-2) XML as sent.

        A read, safe to repeat. Raises :class:`PartnerReplyError` when the
        reply is not well-formed XML, :class:`PartnerPermanentError` on ``KO``.
        """
        operation = "fetch_classification"
        response, _ = await self._send(
            operation, "GET", PATH_CLASSIFICATION_FETCH, params={"api": "1"}
        )
        return check_xml_document(response.content, partner=self.partner, operation=operation)

    async def request_classification(self) -> str:
        """Ask the TdT to request a fresh classification from the prefecture (7-1).

        Returns the TdT's acknowledgement text. Repeating it only sends another
        request: harmless.
        """
        operation = "request_classification"
        response, _ = await self._send(
            operation, "GET", PATH_CLASSIFICATION_REQUEST, params={"api": "1"}
        )
        return parse_ok_text_reply(
            response.content, partner=self.partner, operation=operation, status=response.status_code
        )

    # -- prefecture messages ---------------------------------------------------------------

    async def list_prefecture_documents(self) -> list[PrefectureDocumentRef]:
        """Unread prefecture messages (2-1, 3-1, 4-1, 5-1) of this account.

        A read, safe to repeat. The list may hold a message twice (under two
        ids) or in any order, and a message may be listed before the acte's
        ``ARActe`` is visible: callers deduplicate and tolerate it.
        """
        operation = "list_prefecture_documents"
        response, _ = await self._send(operation, "GET", PATH_LIST_DOCUMENTS)
        return parse_document_list(response.content, partner=self.partner, operation=operation)

    async def get_prefecture_document(self, document_id: str) -> bytes:
        """One prefecture message as the TdT serves it (the tar.gz archive), byte for byte.

        A read, safe to repeat. Raises :class:`PartnerPermanentError` for an
        unknown id.
        """
        operation = "get_prefecture_document"
        response, _ = await self._send(
            operation, "GET", PATH_GET_DOCUMENT, params={"id": document_id}
        )
        if is_ko(response.content):
            raise ko_error(response.content, self.partner, operation, response.status_code)
        return response.content

    async def mark_prefecture_document_read(self, document_id: str) -> None:
        """Remove a prefecture message from the unread list. Idempotent: safe to repeat."""
        operation = "mark_prefecture_document_read"
        response, _ = await self._send(
            operation, "GET", PATH_MARK_READ, params={"transaction_id": document_id}
        )
        if is_ko(response.content):
            raise ko_error(response.content, self.partner, operation, response.status_code)

    async def post_reply(
        self,
        transaction_id: str,
        type_code: str,
        form: ReplyForm | None,
        files: Sequence[FileLike],
        *,
        idempotency_key: str | None = None,
    ) -> PostResult:
        """Send a member's reply to a prefecture message; return the reply's transaction id.

        ``transaction_id`` is the id of the prefecture message (as listed by
        :meth:`list_prefecture_documents`), ``type_code`` one of 2-2, 3-2, 3-3,
        3-4, 4-2, 4-3, 4-4. ``files[0]`` is the reply letter, further files are
        the additional documents of a 3-4. The TdT only receives the reply's
        sub-type (``type_envoie``, the digit after the dash) and takes the family
        from the prefecture message, so a family mismatch cannot be detected
        there. Same retry rules as :meth:`post_acte`.
        """
        if type_code not in REPLY_TYPES:
            raise ValidationError(
                f"post_reply: {type_code!r} is not a member reply type",
                reasons=[
                    Reason("type_code", "unknown_reply_type", f"one of {sorted(REPLY_TYPES)}")
                ],
            )
        form = form or ReplyForm()
        extra = len(files) - 1
        type_pj = form.type_pj or ("99_AU",) * max(extra, 0)
        if len(type_pj) != max(extra, 0):
            raise ValidationError(
                "post_reply: the form cannot be sent",
                reasons=[
                    Reason("type_pj", "count", f"{len(type_pj)} typologies for {extra} files")
                ],
            )
        fields: list[tuple[str, bytes]] = [
            ("api", b"1"),
            ("id", transaction_id.encode("ascii")),
            ("type_envoie", type_code.split("-")[1].encode("ascii")),
            ("type_acte", form.type_acte.encode("ascii")),
            *(("type_pj[]", code.encode("ascii")) for code in type_pj),
        ]
        if form.description is not None:
            fields.append(("description", encode_latin1(form.description, "description")))
        operation = "post_reply"
        body = MultipartBody(fields, _acte_files(files))
        response, elapsed = await self._send(
            operation,
            "POST",
            PATH_REPLY_CREATE,
            params={"api": "1"},  # S²LOW reads api from the query string here
            body=body,
            idempotency_key=idempotency_key,
        )
        reply_id = parse_ok_id_reply(
            response.content, partner=self.partner, operation=operation, status=response.status_code
        )
        return PostResult(
            partner=self.partner,
            transaction_id=reply_id,
            http_status=response.status_code,
            elapsed=elapsed,
            raw=response.content,
            idempotency_key=idempotency_key,
        )

    # -- reconciliation --------------------------------------------------------------------

    async def list_transactions(
        self,
        *,
        number: str | None = None,
        decision_date: date | None = None,
        nature_code: int | None = None,
        since: date | None = None,
    ) -> list[TransactionRef]:
        """Transactions of this account, optionally filtered; a read, safe to repeat.

        Served by ``api/list_transactions.php`` on the Relais sandbox. Real
        S²LOW lists transactions with ``api/list_actes.php`` (by state, with
        offset/limit and submission dates); a deployment against a real TdT
        points this call at that listing. Filters are also applied here, so a
        TdT that ignores them is still matched correctly.
        """
        params: dict[str, str] = {}
        if number is not None:
            params["number"] = number
        if decision_date is not None:
            params["decision_date"] = decision_date.isoformat()
        if nature_code is not None:
            params["nature_code"] = str(nature_code)
        if since is not None:
            params["min_submission_date"] = since.isoformat()
        operation = "list_transactions"
        response, _ = await self._send(operation, "GET", PATH_LIST_TRANSACTIONS, params=params)
        rows = parse_transaction_list(response.content, partner=self.partner, operation=operation)
        return [
            row
            for row in rows
            if (number is None or row.number == number)
            and (decision_date is None or row.decision_date in (None, decision_date))
            and (nature_code is None or row.nature_code in (None, nature_code))
        ]

    async def find_by_idempotency_key(
        self, key: str, *, number: str, decision_date: date, nature_code: int
    ) -> str | None:
        """The transaction an earlier, possibly unanswered, ``post_acte`` created; None if none.

        Use after a creation failed ambiguously (timeout, 5xx, crash before the
        id was recorded) and before posting again. Real TdTs know nothing of
        our key: what identifies an acte there is the member, its number, its
        decision date and its nature (they make the IDActe), so this lists the
        transactions with that number and matches on (number, decision_date,
        nature). Rows in state -1 (error) or 0 (cancelled) do not count: such
        an acte must be posted again. When a listing carries the key (the
        sandbox does), a row with exactly this key wins; otherwise the most
        recent matching row does.
        """
        rows = await self.list_transactions(
            number=number, decision_date=decision_date, nature_code=nature_code
        )
        live = [row for row in rows if row.status not in _INACTIVE]
        for row in live:
            if row.idempotency_key == key:
                return row.id
        if not live:
            return None
        return max(live, key=_id_order).id


def _id_order(row: TransactionRef) -> tuple[int, str]:
    return (int(row.id), row.id) if row.id.isdigit() else (-1, row.id)


def _acte_fields(form: ActeForm, file_count: int) -> list[tuple[str, bytes]]:
    reasons: list[Reason] = []
    if file_count < 1:
        reasons.append(Reason("files", "missing", "the main document is required"))
    if form.type_pj and len(form.type_pj) != file_count - 1:
        reasons.append(
            Reason(
                "type_pj", "count", f"{len(form.type_pj)} typologies for {file_count - 1} annexes"
            )
        )
    if len(form.classification) < 2:
        reasons.append(Reason("classification", "levels", "levels 1 and 2 are required"))
    if reasons:
        raise ValidationError("post_acte: the form cannot be sent", reasons=reasons)
    fields: list[tuple[str, bytes]] = [
        ("api", b"1"),
        ("nature_code", str(form.nature_code).encode("ascii")),
        ("number", form.number.encode("ascii", errors="replace")),
        ("subject", encode_latin1(form.subject, "subject")),
        ("decision_date", form.decision_date.isoformat().encode("ascii")),
    ]
    fields += [
        (f"classif{level}", str(code).encode("ascii"))
        for level, code in enumerate(form.classification, start=1)
    ]
    fields.append(("document_papier", b"1" if form.document_papier else b"0"))
    fields.append(("en_attente", b"1" if form.en_attente else b"0"))
    if form.type_acte is not None:
        fields.append(("type_acte", form.type_acte.encode("ascii")))
    fields += [("type_pj[]", code.encode("ascii")) for code in form.type_pj]
    return fields


def _acte_files(files: Sequence[FileLike]) -> list[tuple[str, FileLike]]:
    if not files:
        raise ValidationError(
            "a TdT submission needs at least one file",
            reasons=[Reason("files", "missing", "the main document is required")],
        )
    parts: list[tuple[str, FileLike]] = [("acte_pdf_file", files[0])]
    parts += [("acte_attachments[]", file) for file in files[1:]]
    return parts
