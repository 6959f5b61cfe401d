"""The hub's connector to a tiers de télétransmission speaking S²LOW's actes API.

Written from S²LOW's own scripts (libriciel/s2low ``public.ssl/modules/actes/``)
and from the client every collectivité uses through Pastell (libriciel/pastell
``connecteur/s2low/S2low.php``). It speaks what a real S²LOW serves and nothing
else: no header or path of the Relais sandbox.

One :class:`S2lowConnector` serves one TdT account. It is given its
``httpx.AsyncClient`` (TLS client certificate, HTTP Basic, timeouts and
``follow_redirects=False``: see :func:`connectors.http.client.build_partner_client`).

Every call goes through :meth:`S2lowConnector._call`, the only place that
talks to httpx. It reads each answer **streamed**, up to the cap of its
endpoint (:class:`ReplyCaps`), and within a deadline; more is
:class:`PartnerReplyTooLargeError`. Failures come out as the Relais partner
errors of :mod:`connectors.tdt.errors`: S²LOW refuses with HTTP 200 and a
``KO`` line, which becomes :class:`PartnerRefusedError` carrying S²LOW's own
text, or :class:`PartnerAuthError` when the account or its certificate was
refused.

Delivery semantics: reads (status, listings, documents, the classification)
are safe to repeat. Creations (an acte, a member reply, a cancellation) are
not idempotent: after a *transient* failure the TdT may have recorded the
creation. Before posting an acte again, call :meth:`S2lowConnector.find_acte`:
S²LOW refuses a number it already holds for the authority (whatever the
acte's state), so the acte's number and decision date identify it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
import structlog

from connectors.http.limits import capped_chunks, read_capped
from connectors.tdt.errors import (
    is_ko,
    map_transport_errors,
    refusal,
    reply_error,
    status_error,
)
from connectors.tdt.models import (
    ActeForm,
    FileLike,
    PostResult,
    PrefectureDocumentRef,
    ReplyForm,
    StatusResult,
    TransactionRef,
)
from connectors.tdt.multipart import MultipartBody
from connectors.tdt.replies import (
    check_xml_document,
    parse_actes_listing,
    parse_document_list,
    parse_mark_read,
    parse_ok_id,
    parse_ok_text_reply,
    parse_status_reply,
)
from connectors.tdt.rules import check_number
from connectors.tdt.tally import TALLY
from connectors.tdt.text import encode_latin1
from relais.errors import (
    PartnerAuthError,
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerTimeoutError,
    PartnerTransientError,
    Reason,
    RelaisError,
    ValidationError,
)

log = structlog.get_logger(__name__)
_R = TypeVar("_R")

ACTES = "/modules/actes"
PATH_CREATE = f"{ACTES}/actes_transac_create.php"
PATH_STATUS = f"{ACTES}/actes_transac_get_status.php"
PATH_CANCEL = f"{ACTES}/actes_transac_cancel.php"
PATH_CLASSIFICATION_FETCH = f"{ACTES}/actes_classification_fetch.php"
PATH_CLASSIFICATION_REQUEST = f"{ACTES}/actes_classification_request.php"
PATH_REPLY_CREATE = f"{ACTES}/actes_transac_reponse_create.php"
PATH_GET_DOCUMENT = f"{ACTES}/actes_transac_get_document.php"
PATH_GET_TAMPON = f"{ACTES}/actes_transac_get_tampon.php"
PATH_DOWNLOAD = f"{ACTES}/actes_download_file.php"
PATH_LIST_DOCUMENTS = f"{ACTES}/api/list_document_prefecture.php"
PATH_MARK_READ = f"{ACTES}/api/document_prefecture_mark_as_read.php"
PATH_LIST_ACTES = f"{ACTES}/api/list_actes.php"

REPLY_TYPE_ENVOIE: Mapping[str, str] = {
    "2-2": "2",
    "3-3": "3",
    "3-4": "4",
    "4-3": "3",
    "4-4": "4",
}
"""Reply kinds S²LOW accepts (message code → ``type_envoie``).

To a demande de pièces complémentaires (3) or a lettre d'observations (4)
S²LOW takes ``type_envoie`` 3 (refus: 3-3, 4-3) or 4 (envoi: 3-4, 4-4), as
Pastell sends them; a courrier simple (2) takes its reply 2-2. The
acknowledgements 3-2 and 4-2 carry no document and are not posted.
"""

REPLY_TYPES = frozenset(REPLY_TYPE_ENVOIE)

LISTING_STATES: tuple[int, ...] = (17, 18, 1, 2, 3, 4, 5, -1, 0, 19, 12, 13, 14, 20, 22, 16)
"""The ``status_id`` values :meth:`S2lowConnector.find_acte` lists, in this order.

``api/list_actes.php`` lists the transactions *in one state* only
(``last_status_id = status_id``), so proving an acte absent means listing
every state an acte (transaction type 1) can hold, from
``class/actes/ActesStatusSQL.php``: 17/18 (waiting to be posted or signed,
``ActesTransaction::save``), 1 posted, 2 waiting for transmission, 3
transmitted, 4 acknowledged (``ARActe``), 5 validated (an input of the SAE
transitions with 4 and 12), -1 error (``AnomalieActe`` while 3, or a failed
transmission), 0 cancelled (``ARAnnulation`` after 4), and the archive states
19, 12, 13, 14, 20, 22 and 16 (destroyed). States 7, 8 and 21 are not
listed: ``ActesAnalyseFichierRecuController`` sets them on the transactions
of prefecture messages (types 2–5), never on an acte.

The order follows an acte's life (17/18 → 1 → 2 → 3 → 4 → 5 / archive,
-1 from 1–3, 0 from 4). :meth:`S2lowConnector.find_acte` lists several states
at once (a reconciliation costs the slowest listing, not the sum of 16), so an
acte that moves between two states while they are listed can be missed: the
caller must treat "absent" as "post again" only because S²LOW itself refuses a
number it already holds, and then ask again (acts-delivery does).
"""

GZIP_MAGIC = b"\x1f\x8b"
"""The first bytes of a gzip stream: a prefecture message's .tar.gz."""

ACTE_TRANSACTION_TYPE = "1"
"""``TypeTransaction::TransmissionActe``: the listing also holds replies, cancellations…"""

MIB = 1024 * 1024


@dataclass(frozen=True)
class ReplyCaps:
    """Largest answer read per kind of endpoint, in bytes; more is PartnerReplyTooLargeError.

    ``document`` covers the prefecture's archive and the stamped PDF: S²LOW
    itself refuses an acte's files above ``ACTES_ARCHIVE_MAX_SIZE`` (150 MB on
    the platforms we know), so nothing it serves back legitimately exceeds it.
    """

    text: int = 64 * 1024
    status: int = 4 * MIB
    listing: int = 4 * MIB
    classification: int = 16 * MIB
    document: int = 150 * MIB


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    elapsed: float
    url: httpx.URL


class S2lowConnector:
    """Calls of the S²LOW actes API for one TdT account.

    ``base_url`` is the TdT's root (``https://tdt.example.org``); paths are
    appended to it. ``partner`` names the TdT in errors and logs. ``caps``
    bounds every answer; ``body_deadline`` (seconds) bounds the time spent
    reading one answer (the client's timeouts bound each network wait).
    ``listing_attempts`` and ``find_deadline`` bound :meth:`find_acte` (see
    there); ``redirect_read_attempts`` is how often each hop of the two
    redirected downloads is tried after a transient failure (a redirect doubles
    the calls, so the chance that one fails); ``sleep`` is the pause between
    attempts (tests pass a fake). ``max_in_flight`` bounds the exchanges under way
    at once (the client's ``max_connections``): the others wait their turn before
    any timeout runs, so a burst of one account's actes reuses a few kept-alive
    connections instead of opening (and handshaking) one per acte.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        partner: str = "tdt",
        caps: ReplyCaps | None = None,
        body_deadline: float = 600.0,
        listing_page_size: int = 100,
        max_listing_pages: int = 200,
        listing_attempts: int = 6,
        listing_concurrency: int = 4,
        redirect_read_attempts: int = 3,
        find_deadline: float = 180.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_in_flight: int | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self.partner = partner
        self.caps = caps or ReplyCaps()
        self._body_deadline = body_deadline
        self._page_size = listing_page_size
        self._max_pages = max_listing_pages
        self._listing_attempts = max(1, listing_attempts)
        self._listing_concurrency = max(1, listing_concurrency)
        self._redirect_read_attempts = max(1, redirect_read_attempts)
        self._find_deadline = find_deadline
        self._sleep = sleep
        self._in_flight = asyncio.Semaphore(max_in_flight) if max_in_flight else None

    @property
    def base_url(self) -> str:
        """The TdT's root URL, as named in authentication errors."""
        return self._base_url

    # -- the one place that talks to httpx -------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self, operation: str) -> AsyncIterator[None]:
        """One of the ``max_in_flight`` exchanges, its transport errors translated."""
        async with self._in_flight or contextlib.nullcontext():
            with map_transport_errors(self.partner, operation):
                yield

    async def _exchange(
        self,
        operation: str,
        method: str,
        url: str | httpx.URL,
        *,
        cap: int,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        body: MultipartBody | None = None,
    ) -> _Answer:
        headers: dict[str, str] = {"Accept-Encoding": "identity"}
        content: Any = None
        if body is not None:
            headers["Content-Type"] = body.content_type
            length = body.content_length
            if length is not None:
                headers["Content-Length"] = str(length)
            content = body
        async with self._in_flight or contextlib.nullcontext():
            started = time.perf_counter()
            with map_transport_errors(self.partner, operation):
                request = self._client.build_request(
                    method, url, params=params, data=data, content=content, headers=headers
                )
                response = await self._client.send(request, stream=True)
                try:
                    payload = await self._read_capped(response, cap, operation)
                finally:
                    await response.aclose()
            elapsed = time.perf_counter() - started
        # one line per call: DEBUG on the hot path (the flow events keep what happened, and
        # TALLY's tdt.calls_summary the counts), INFO when the TdT answers an HTTP error
        elapsed_ms = round(elapsed * 1000, 1)
        fields = {"partner": self.partner, "operation": operation,
                  "http_status": response.status_code, "bytes": len(payload),
                  "elapsed_ms": elapsed_ms}
        if response.status_code >= 400:
            log.info("tdt.called", **fields)
        else:
            log.debug("tdt.called", **fields)
        TALLY.add(self.partner, operation, response.status_code, elapsed_ms)
        return _Answer(response.status_code, response.headers, payload, elapsed, request.url)

    async def _read_capped(self, response: httpx.Response, cap: int, operation: str) -> bytes:
        return await read_capped(response, cap, partner=self.partner, operation=operation,
                                 deadline=self._body_deadline, label="TdT")

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        cap: int,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        body: MultipartBody | None = None,
        follow_to: str | None = None,
        attempts: int = 1,
    ) -> _Answer:
        """One call; with ``follow_to``, one redirect to that path (same origin) is followed.

        ``attempts`` > 1 tries each hop again after a transient failure (reads
        only: a request with a body is sent once).
        """
        if body is not None:
            attempts = 1
        answer = await self._retrying(
            attempts,
            partial(
                self._hop,
                operation,
                method,
                self._base_url + path,
                cap=cap,
                params=params,
                data=data,
                body=body,
                redirect_ok=follow_to is not None,
            ),
        )
        if follow_to is not None and 300 <= answer.status < 400:
            target = self._redirect_target(answer, follow_to, operation)
            answer = await self._retrying(
                attempts, partial(self._hop, operation, "GET", target, cap=cap)
            )
        return answer

    async def _hop(
        self,
        operation: str,
        method: str,
        url: str | httpx.URL,
        *,
        cap: int,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        body: MultipartBody | None = None,
        redirect_ok: bool = False,
    ) -> _Answer:
        """One HTTP exchange whose status is an error unless 2xx (or 3xx when ``redirect_ok``)."""
        answer = await self._exchange(
            operation, method, url, cap=cap, params=params, data=data, body=body
        )
        if redirect_ok and 300 <= answer.status < 400:
            return answer
        error = status_error(
            answer.status,
            answer.headers,
            answer.body,
            partner=self.partner,
            operation=operation,
            url=self._base_url,
        )
        if error is not None:
            raise error
        return answer

    def _redirect_target(self, answer: _Answer, follow_to: str, operation: str) -> httpx.URL:
        """The redirect's URL when it is ``follow_to`` on the request's scheme, host and port."""
        location = answer.headers.get("Location", "").strip()
        target = answer.url.join(location) if location else None
        expected_path = httpx.URL(self._base_url + follow_to).path
        if (
            target is not None
            and _origin(target) == _origin(answer.url)
            and target.path == expected_path
            and not target.userinfo
        ):
            return target
        error = status_error(
            answer.status,
            answer.headers,
            answer.body,
            partner=self.partner,
            operation=operation,
            url=self._base_url,
        )
        if isinstance(error, PartnerAuthError):
            raise error
        raise PartnerReplyError(
            f"{operation}: redirect HTTP {answer.status} to {location!r} refused: only "
            f"{expected_path} on {answer.url.scheme}://{answer.url.netloc.decode('ascii')} "
            "is followed",
            partner=self.partner,
            status=answer.status,
        )

    def _refusal(self, answer: _Answer, operation: str, field: str) -> Exception:
        return refusal(
            answer.body,
            partner=self.partner,
            operation=operation,
            status=answer.status,
            url=self._base_url,
            field=field,
        )

    # -- actes ------------------------------------------------------------------------------

    async def post_acte(self, form: ActeForm, files: Sequence[FileLike], *,
                        signature: FileLike | None = None) -> PostResult:
        """Submit one acte (``actes_transac_create.php``); return the TdT's transaction id.

        ``files[0]`` is the acte's document (``acte_pdf_file``), the others are
        annexes (``acte_attachments[]``) in the order of ``form.type_pj``. The
        form goes as S²LOW reads it with ``api=1`` in POST: fields in
        ISO-8859-1. S²LOW answers ``OK\\n<id>\\n\\n``; the acte then rests in
        state 1 (posted), or 17/18 when the account posts ``en_attente`` or
        must sign first. ``signature`` is the document's detached signature
        (``acte_pdf_file_sign``, as text: S²LOW writes it into ``actes:Signature``).
        Raises :class:`ValidationError` before any call when
        the number breaks S²LOW's pattern or the form cannot be encoded, and
        :class:`PartnerRefusedError` with S²LOW's text when it answers ``KO``
        (duplicate number, future date, file type…).

        Retrying: after a transient error the acte may have been recorded:
        look it up with :meth:`find_acte` before posting again. Async file
        streams are consumed: a retry needs fresh files.
        """
        parts = _acte_files(files)
        if signature is not None:  # the acte's detached signature (i-Parapheur)
            parts.insert(1, ("acte_pdf_file_sign", signature))
        body = MultipartBody(_acte_fields(form, len(files)), parts)
        operation = "post_acte"
        answer = await self._call(operation, "POST", PATH_CREATE, cap=self.caps.text, body=body)
        result = self._created(answer, operation, "acte")
        log.debug(  # the acte's "posted" flow event names the transaction too
            "tdt.acte_posted",
            partner=self.partner,
            transaction_id=result.transaction_id,
            number=form.number,
        )
        return result

    def _created(self, answer: _Answer, operation: str, field: str) -> PostResult:
        """The new transaction's id from S²LOW's ``OK`` answer to a creation (acte,
        cancellation, reply); ``KO`` raises :class:`PartnerRefusedError` naming ``field``."""
        transaction_id = parse_ok_id(
            answer.body,
            partner=self.partner,
            operation=operation,
            status=answer.status,
            url=self._base_url,
            field=field,
        )
        return PostResult(
            partner=self.partner,
            transaction_id=transaction_id,
            http_status=answer.status,
            elapsed=answer.elapsed,
            raw=answer.body,
        )

    async def get_status(self, transaction_id: str) -> StatusResult:
        """The current state of a transaction, with the XML the TdT returned for it.

        A read: safe to repeat. States 17, 18 and 21 are not final; a ``KO``
        (unknown transaction) raises :class:`PartnerRefusedError`. Callers keep
        the furthest state they have seen.
        """
        operation = "get_status"
        answer = await self._call(
            operation,
            "GET",
            PATH_STATUS,
            cap=self.caps.status,
            params={"transaction": transaction_id},
        )
        state, document, message = parse_status_reply(
            answer.body,
            partner=self.partner,
            operation=operation,
            status=answer.status,
            url=self._base_url,
        )
        return StatusResult(
            partner=self.partner,
            transaction_id=transaction_id,
            status=state,
            http_status=answer.status,
            elapsed=answer.elapsed,
            raw=answer.body,
            document=document,
            message=message,
        )

    async def cancel(self, transaction_id: str) -> PostResult:
        """Ask the TdT to send an ``Annulation`` (6-1) of an acknowledged acte.

        Returns the id of the **new** cancellation transaction (type 6). The
        acte reaches state 0 once the prefecture's ``ARAnnulation`` arrives:
        poll :meth:`get_status` of the acte. S²LOW refuses (``KO`` →
        :class:`PartnerRefusedError`) an acte not in state 4, or one whose
        cancellation is already under way, so a repeated call cannot cancel
        twice.
        """
        operation = "cancel"
        answer = await self._call(
            operation,
            "POST",
            PATH_CANCEL,
            cap=self.caps.text,
            data={"api": "1", "id": transaction_id},
        )
        return self._created(answer, operation, "cancel")

    async def _download(
        self, operation: str, path: str, params: dict[str, str], field: str
    ) -> tuple[_Answer, bool]:
        """GET ``path``, following S²LOW's redirect to ``actes_download_file.php`` (same
        origin only, ``caps.document`` bytes, each hop tried ``redirect_read_attempts``
        times). Returns the answer and whether it came from the download page; a ``KO``
        instead of the redirect raises :class:`PartnerRefusedError` naming ``field``."""
        answer = await self._call(
            operation,
            "GET",
            path,
            cap=self.caps.document,
            params=params,
            follow_to=PATH_DOWNLOAD,
            attempts=self._redirect_read_attempts,
        )
        if answer.url.path == httpx.URL(self._base_url + PATH_DOWNLOAD).path:
            return answer, True
        if is_ko(answer.body):
            raise self._refusal(answer, operation, field)
        return answer, False

    async def get_stamped_acte(self, transaction_id: str) -> bytes:
        """The acte's PDF as the TdT stamped it with the prefecture's acknowledgement.

        ``actes_transac_get_tampon.php?transaction=<id>`` answers a redirect to
        ``actes_download_file.php?file=<id>&tampon=true`` (followed, same
        origin only) once the acte was acknowledged (state 4 in its history).
        S²LOW answers ``KO`` (``Pas d'acquittement recu``…) otherwise, and an
        empty page when the acte has no file named ``*.pdf`` (an XML budget):
        both raise :class:`PartnerRefusedError`. The PDF is capped at
        ``caps.document`` bytes; each hop is tried up to
        ``redirect_read_attempts`` times while it fails transiently.
        """
        operation = "get_stamped_acte"
        answer, downloaded = await self._download(
            operation, PATH_GET_TAMPON, {"transaction": transaction_id}, "stamped_acte"
        )
        if not downloaded:
            if not answer.body.strip():
                text = f"the TdT holds no PDF file to stamp for transaction {transaction_id}"
                raise PartnerRefusedError(
                    text,
                    partner=self.partner,
                    status=answer.status,
                    reasons=[Reason("stamped_acte", "tdt_refused", text)],
                )
            raise reply_error(
                self.partner, operation, "expected a redirect to the PDF", answer.body
            )
        if not answer.body.startswith(b"%PDF-"):
            raise reply_error(self.partner, operation, "the stamped acte is not a PDF", answer.body)
        return answer.body

    async def save_stamped_acte(
        self, transaction_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[_R]]
    ) -> _R:
        """:meth:`get_stamped_acte`, streamed: the PDF goes to ``store`` chunk by chunk as it
        arrives (a blob store's ``put_stream``), never whole in memory; returns what
        ``store`` returns.

        Same calls, errors and caps as :meth:`get_stamped_acte` (the first hop's answer,
        a redirect or S²LOW's ``KO``, is capped at ``caps.text``). ``store`` must leave
        nothing behind when the chunks it reads raise (``put_stream`` does not): each
        attempt after a transient failure calls it again with a fresh stream.
        """
        operation = "get_stamped_acte"

        async def attempt() -> _R:
            answer = await self._hop(
                operation, "GET", self._base_url + PATH_GET_TAMPON, cap=self.caps.text,
                params={"transaction": transaction_id}, redirect_ok=True,
            )
            if not 300 <= answer.status < 400:
                if is_ko(answer.body):
                    raise self._refusal(answer, operation, "stamped_acte")
                if not answer.body.strip():
                    text = f"the TdT holds no PDF file to stamp for transaction {transaction_id}"
                    raise PartnerRefusedError(
                        text, partner=self.partner, status=answer.status,
                        reasons=[Reason("stamped_acte", "tdt_refused", text)],
                    )
                raise reply_error(
                    self.partner, operation, "expected a redirect to the PDF", answer.body
                )
            target = self._redirect_target(answer, PATH_DOWNLOAD, operation)
            return await self._stream_checked(operation, target, store, b"%PDF-",
                                              "the stamped acte is not a PDF")

        return await self._retrying(self._redirect_read_attempts, attempt)

    async def _stream_checked(
        self, operation: str, url: httpx.URL,
        store: Callable[[AsyncIterator[bytes]], Awaitable[_R]], magic: bytes, wrong: str,
    ) -> _R:
        """GET ``url`` and hand its body, checked to start with ``magic`` (else
        :class:`PartnerReplyError` saying ``wrong``), to ``store`` as it arrives."""
        started = time.perf_counter()
        sent = 0

        async def checked(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            nonlocal sent
            head = b""
            async for chunk in chunks:
                if len(head) < len(magic):
                    head += chunk
                    if len(head) < len(magic):
                        continue
                    if not head.startswith(magic):
                        raise reply_error(self.partner, operation, wrong, head)
                    chunk, head = head, magic
                sent += len(chunk)
                yield chunk
            if len(head) < len(magic):
                raise reply_error(self.partner, operation, wrong, head)

        # under the cap on calls in flight too: the download holds a connection
        async with self._slot(operation):
            request = self._client.build_request(
                "GET", url, headers={"Accept-Encoding": "identity"}
            )
            response = await self._client.send(request, stream=True)
            try:
                if not 200 <= response.status_code < 300:
                    body = await self._read_capped(response, self.caps.text, operation)
                    error = status_error(response.status_code, response.headers, body,
                                         partner=self.partner, operation=operation,
                                         url=self._base_url)
                    raise error or reply_error(self.partner, operation,
                                               f"HTTP {response.status_code} instead of the "
                                               "document", body)
                stored = await store(checked(capped_chunks(
                    response, self.caps.document, partner=self.partner, operation=operation,
                    deadline=self._body_deadline, label="TdT")))
            finally:
                await response.aclose()
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        log.debug("tdt.called", partner=self.partner, operation=operation,
                  http_status=response.status_code, bytes=sent, streamed=True,
                  elapsed_ms=elapsed_ms)
        TALLY.add(self.partner, operation, response.status_code, elapsed_ms)
        return stored

    # -- reconciliation --------------------------------------------------------------------

    async def list_actes(
        self, status_id: int, *, min_date: date | None = None, attempts: int = 1
    ) -> list[TransactionRef]:
        """Every transaction of this account in state ``status_id`` (all pages), newest first.

        ``api/list_actes.php`` (``ActesAPIController::listActesAction``) takes
        ``status_id``, ``offset``, ``limit`` (default 100) and, in recent
        versions, ``min_date`` (read by ``RequestHelper::checkDate``: any date
        ``strtotime`` reads), which keeps the transactions that entered their
        current state on or after that day (its ``actes_transactions_workflow``
        join); older versions ignore it, and callers match rows themselves.
        ``type_acte`` is not sent: its SQL filters nothing by nature. Pages are
        read until one is short; more than ``max_listing_pages`` pages raise
        :class:`PartnerPermanentError`. A read, safe to repeat: each page is
        tried up to ``attempts`` times while it fails transiently.
        """
        operation = "list_actes"
        rows: list[TransactionRef] = []
        for page in range(self._max_pages):
            offset = page * self._page_size
            params = {
                "status_id": str(status_id),
                "offset": str(offset),
                "limit": str(self._page_size),
            }
            if min_date is not None:
                params["min_date"] = min_date.isoformat()
            answer = await self._call(
                operation,
                "GET",
                PATH_LIST_ACTES,
                cap=self.caps.listing,
                params=params,
                attempts=attempts,
            )
            batch = parse_actes_listing(
                answer.body,
                partner=self.partner,
                operation=operation,
                status=answer.status,
                url=self._base_url,
                status_id=status_id,
                offset=offset,
            )
            rows += batch
            if len(batch) < self._page_size:
                return rows
        raise PartnerPermanentError(
            f"{operation}: state {status_id} lists more than "
            f"{self._max_pages * self._page_size} transactions; cannot read it whole",
            partner=self.partner,
        )

    async def _retrying(self, attempts: int, call: Callable[[], Awaitable[_R]]) -> _R:
        """``call()``, again after a transient failure, ``attempts`` times in all (reads only)."""
        for attempt in range(1, attempts + 1):
            try:
                return await call()
            except PartnerTransientError as exc:
                if attempt == attempts:
                    raise
                pause = min(0.5 * 2 ** (attempt - 1), 4.0)
                if exc.retry_after is not None:
                    pause = min(max(pause, exc.retry_after), 10.0)
                log.info(
                    "tdt.read_retried",
                    partner=self.partner,
                    attempt=attempt,
                    error=exc.code,
                    pause_s=pause,
                )
                await self._sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    async def find_acte(self, *, number: str, decision_date: date) -> str | None:
        """The transaction id of the acte with this number and decision date, or None.

        Use it after a ``post_acte`` failed ambiguously (timeout, 5xx, crash
        before the id was recorded) and before posting again. S²LOW keeps an
        acte's number unique for the authority whatever the acte's state
        (``ActesTransaction::save``), so at most one transaction of type 1
        (``TransmissionActe``) can carry it.

        How: ``api/list_actes.php`` lists one state at a time, so every state
        of :data:`LISTING_STATES` is listed, ``listing_concurrency`` at a time
        in that order (an acte moving meanwhile can be missed: see
        :data:`LISTING_STATES`), each with
        ``min_date`` the day before ``decision_date`` (an acte is posted on or
        after its decision date, and enters each state after that), page by
        page. Rows of other transaction types (replies, cancellations share
        the number) are skipped.

        Returns the id when a type-1 row has this number and decision date;
        ``None`` when no state lists it, or when the number belongs to an acte
        with another decision date (S²LOW will then refuse the number: posting
        again yields its own refusal). Raises :class:`PartnerTransientError`
        when the TdT cannot answer now, :class:`PartnerPermanentError` (or a
        subclass) when it never can: no ``list_actes.php``, an unreadable
        listing, a listing that names no authority (failed authentication,
        :class:`PartnerAuthError`), too many pages.

        Up to 16 listings make one answer, so a flaky TdT must not make the
        whole answer fail for one bad call: each page is tried up to
        ``listing_attempts`` times (pauses 0.5 s, 1 s, 2 s, 4 s, 4 s, or Retry-After up
        to 10 s) while it fails transiently, and the whole lookup is bounded
        by ``find_deadline`` seconds (then :class:`PartnerTimeoutError`).

        Wait until S²LOW can no longer be processing the failed request (the
        client's timeout plus its own, a few minutes) before calling: a
        creation still running on the TdT is not listed yet.
        """
        try:
            async with asyncio.timeout(self._find_deadline):
                return await self._find_acte(number, decision_date)
        except TimeoutError as exc:
            raise PartnerTimeoutError(
                f"find_acte: no answer within {self._find_deadline:.0f} s",
                partner=self.partner,
            ) from exc

    async def _find_acte(self, number: str, decision_date: date) -> str | None:
        wanted_date = decision_date.isoformat()
        min_date = decision_date - timedelta(days=1)
        found: dict[str, TransactionRef] = {}
        other_dates: list[TransactionRef] = []
        gate = asyncio.Semaphore(self._listing_concurrency)

        stop = asyncio.Event()  # set by a failed listing: the answer cannot be made any more

        async def listed(status_id: int) -> list[TransactionRef]:
            async with gate:
                if found or stop.is_set():  # found already, or no answer possible
                    return []
                try:
                    rows = await self.list_actes(
                        status_id, min_date=min_date, attempts=self._listing_attempts
                    )
                except RelaisError:
                    stop.set()
                    raise
            for row in rows:
                if row.type != ACTE_TRANSACTION_TYPE or row.number != number:
                    continue
                if row.decision_date is not None and row.decision_date.isoformat() == wanted_date:
                    found.setdefault(row.id, row)
                else:
                    other_dates.append(row)
            return rows

        try:
            async with asyncio.TaskGroup() as group:  # one failure cancels the other listings
                for status_id in LISTING_STATES:
                    group.create_task(listed(status_id))
        except* RelaisError as failures:
            raise failures.exceptions[0] from None
        if len(found) > 1:
            raise PartnerReplyError(
                f"find_acte: {len(found)} actes carry number {number!r} "
                f"({', '.join(sorted(found))}); S²LOW keeps numbers unique",
                partner=self.partner,
            )
        if found:
            row = next(iter(found.values()))
            log.info(
                "tdt.acte_found",
                partner=self.partner,
                transaction_id=row.id,
                number=number,
                status=row.status,
            )
            return row.id
        if other_dates:
            log.warning(
                "tdt.acte_number_taken",
                partner=self.partner,
                number=number,
                decision_date=wanted_date,
                transaction_id=other_dates[0].id,
                other_decision_date=str(other_dates[0].decision_date),
            )
        log.info("tdt.acte_absent", partner=self.partner, number=number, decision_date=wanted_date)
        return None

    # -- classification --------------------------------------------------------------------

    async def fetch_classification(self) -> bytes:
        """The member's current classification, the ``RetourClassification`` (7-2) XML as sent.

        A read, safe to repeat. Raises :class:`PartnerReplyError` when the
        answer is not well-formed XML, :class:`PartnerRefusedError` on ``KO``.
        """
        operation = "fetch_classification"
        answer = await self._call(
            operation,
            "GET",
            PATH_CLASSIFICATION_FETCH,
            cap=self.caps.classification,
            params={"api": "1"},
        )
        return check_xml_document(
            answer.body, partner=self.partner, operation=operation, url=self._base_url
        )

    async def request_classification(self) -> str:
        """Ask the TdT to request a fresh classification from the prefecture (7-1).

        Returns what follows ``OK`` (the id of the 7-1 transaction). S²LOW may
        refuse a request made too soon after the previous one (``KO``).
        """
        operation = "request_classification"
        answer = await self._call(
            operation, "GET", PATH_CLASSIFICATION_REQUEST, cap=self.caps.text, params={"api": "1"}
        )
        return parse_ok_text_reply(
            answer.body,
            partner=self.partner,
            operation=operation,
            status=answer.status,
            url=self._base_url,
        )

    # -- prefecture messages ---------------------------------------------------------------

    async def list_prefecture_documents(self) -> list[PrefectureDocumentRef]:
        """Unread prefecture messages (transaction types 2 to 5) of this account.

        A read, safe to repeat. Rows come in id order; callers deduplicate and
        tolerate a message listed before the acte's ``ARActe`` is visible.
        """
        operation = "list_prefecture_documents"
        answer = await self._call(operation, "GET", PATH_LIST_DOCUMENTS, cap=self.caps.listing)
        return parse_document_list(
            answer.body,
            partner=self.partner,
            operation=operation,
            status=answer.status,
            url=self._base_url,
        )

    async def get_prefecture_document(self, document_id: str) -> bytes:
        """One prefecture message, the .tar.gz archive the TdT received, byte for byte.

        ``actes_transac_get_document.php?id=<id>`` answers a redirect to
        ``actes_download_file.php?env=<envelope>``, followed on the same scheme,
        host and port only (anything else is :class:`PartnerReplyError`). A
        ``KO`` (unknown id) raises :class:`PartnerRefusedError`; an answer that
        is not gzip data raises :class:`PartnerReplyError`. Capped at
        ``caps.document`` bytes. A read, safe to repeat: each hop is tried up
        to ``redirect_read_attempts`` times while it fails transiently.
        """
        operation = "get_prefecture_document"
        answer, downloaded = await self._download(
            operation, PATH_GET_DOCUMENT, {"id": document_id}, "document"
        )
        if not downloaded:
            # For an acte's id S²LOW lists its messages ("type-status-id" lines) instead.
            raise reply_error(
                self.partner, operation, "expected a redirect to the archive", answer.body
            )
        if not answer.body.startswith(GZIP_MAGIC):
            raise reply_error(self.partner, operation, "the archive is not gzip data", answer.body)
        return answer.body

    async def save_prefecture_document(
        self, document_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[_R]]
    ) -> _R:
        """:meth:`get_prefecture_document`, streamed: the .tar.gz goes to ``store`` chunk by
        chunk as it arrives (a blob store's ``put_stream``), never whole in memory; returns
        what ``store`` returns.

        Same calls, errors and caps as :meth:`get_prefecture_document`; the first hop's
        answer (S²LOW's 302, a ``KO``, or the ``type-status-id`` lines it prints for an
        acte's id) is capped at ``caps.text``. ``store`` must leave nothing behind when the
        chunks it reads raise (``put_stream`` does not): each attempt after a transient
        failure calls it again with a fresh stream.
        """
        operation = "get_prefecture_document"

        async def attempt() -> _R:
            answer = await self._hop(
                operation, "GET", self._base_url + PATH_GET_DOCUMENT, cap=self.caps.text,
                params={"id": document_id}, redirect_ok=True,
            )
            if not 300 <= answer.status < 400:
                if is_ko(answer.body):
                    raise self._refusal(answer, operation, "document")
                raise reply_error(
                    self.partner, operation, "expected a redirect to the archive", answer.body
                )
            target = self._redirect_target(answer, PATH_DOWNLOAD, operation)
            return await self._stream_checked(operation, target, store, GZIP_MAGIC,
                                              "the archive is not gzip data")

        return await self._retrying(self._redirect_read_attempts, attempt)

    async def mark_prefecture_document_read(self, document_id: str) -> None:
        """Remove a prefecture message from the unread list. Idempotent: safe to repeat."""
        operation = "mark_prefecture_document_read"
        answer = await self._call(
            operation,
            "GET",
            PATH_MARK_READ,
            cap=self.caps.text,
            params={"transaction_id": document_id},
        )
        parse_mark_read(
            answer.body,
            partner=self.partner,
            operation=operation,
            status=answer.status,
            url=self._base_url,
        )

    async def post_reply(
        self,
        transaction_id: str,
        type_code: str,
        form: ReplyForm | None,
        files: Sequence[FileLike],
    ) -> PostResult:
        """Send a member's reply to a prefecture message; return the reply's transaction id.

        ``transaction_id`` is the prefecture message's id (as listed by
        :meth:`list_prefecture_documents`), ``type_code`` one of
        :data:`REPLY_TYPES`; it goes as ``type_envoie``
        (:data:`REPLY_TYPE_ENVOIE`). ``files[0]`` is the reply letter, further
        files the pieces of a 3-4. ``api=1`` goes in POST only, as Pastell
        sends it, so S²LOW answers ``OK\\n<id>\\n\\n``. A ``KO`` raises
        :class:`PartnerRefusedError`. Not idempotent: a retry after a
        transient error may reply twice.
        """
        type_envoie = REPLY_TYPE_ENVOIE.get(type_code)
        if type_envoie is None:
            raise ValidationError(
                f"post_reply: S²LOW does not take {type_code!r} as a reply",
                reasons=[
                    Reason(
                        "reply_type",
                        "unknown_reply_type",
                        f"one of {', '.join(sorted(REPLY_TYPES))} "
                        "(3-2 and 4-2 are acknowledgements the TdT does not take)",
                    )
                ],
            )
        form = form or ReplyForm()
        extra = max(len(files) - 1, 0)
        type_pj = form.type_pj or ("99_AU",) * extra
        if len(type_pj) != extra:
            raise ValidationError(
                "post_reply: the form cannot be sent",
                reasons=[
                    Reason("type_pj", "count", f"{len(type_pj)} typologies for {extra} files")
                ],
            )
        fields: list[tuple[str, bytes]] = [
            ("api", b"1"),
            ("id", transaction_id.encode("ascii")),
            ("type_envoie", type_envoie.encode("ascii")),
            ("type_acte", form.type_acte.encode("ascii")),
            *(("type_pj[]", code.encode("ascii")) for code in type_pj),
        ]
        if form.description is not None:
            fields.append(("description", encode_latin1(form.description, "description")))
        operation = "post_reply"
        body = MultipartBody(fields, _acte_files(files))
        answer = await self._call(
            operation, "POST", PATH_REPLY_CREATE, cap=self.caps.text, body=body
        )
        return self._created(answer, operation, "reply")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host.lower(), url.port if url.port is not None else default)


def _acte_fields(form: ActeForm, file_count: int) -> list[tuple[str, bytes]]:
    reasons: list[Reason] = check_number(form.number, field="number")
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
        ("number", form.number.encode("ascii")),
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


__all__ = [
    "LISTING_STATES",
    "REPLY_TYPES",
    "REPLY_TYPE_ENVOIE",
    "ReplyCaps",
    "S2lowConnector",
]
