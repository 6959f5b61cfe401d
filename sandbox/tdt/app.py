"""The sandbox TdT: a Starlette app speaking the S²LOW ACTES API on loopback.

S²LOW endpoints (HTTP Basic; ``KO`` texts list ``field: message`` lines):

====== ================================================== ==========================================
POST   /modules/actes/actes_transac_create.php            submit an acte → XML ``<id>``
GET    /modules/actes/actes_transac_get_status.php        ``?transaction=ID`` → ``OK\\n<state>\\n…``
POST   /modules/actes/actes_transac_cancel.php            ``api=1&id=ID`` → ``OK\\n<id>``
GET    /modules/actes/actes_classification_fetch.php      the 7-2 ``RetourClassification``
GET    /modules/actes/actes_classification_request.php    ``OK`` (asks the prefecture, 7-1)
GET    /modules/actes/api/list_document_prefecture.php    unread prefecture messages, JSON list
GET    /modules/actes/actes_transac_get_document.php      ``?id=ID`` → the message's tar.gz
GET    /modules/actes/api/document_prefecture_mark_as_read.php  ``?transaction_id=ID``
POST   /modules/actes/actes_transac_reponse_create.php    member reply → ``OK\\n<id>``
GET    /modules/actes/api/list_transactions.php           sandbox listing (number, decision_date,
                                                          nature_code, min_submission_date)
====== ================================================== ==========================================

Control endpoints (no authentication; the sandbox binds loopback):
``GET /sandbox/stats``, ``POST /sandbox/reset``, ``GET``/``POST /sandbox/faults``,
``GET /sandbox/transmissions/{id}`` (the archive a transaction produced),
``GET /sandbox/transactions/{id}`` (its state history, JSON).

Our ``X-Relais-Idempotency-Key`` header makes a repeated creation answer the
first one's id without recording anything new.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relais.actes.classification import build_retour_classification
from relais.errors import ConfigurationError, Reason, ValidationError
from sandbox.tdt.config import SandboxAccount, SandboxConfig
from sandbox.tdt.forms import FormError, FormFile, RawForm, read_form
from sandbox.tdt.state import (
    ACKNOWLEDGED,
    ERROR,
    REPLY_TYPES_BY_DOCUMENT,
    Clock,
    TdtState,
    Transaction,
    form_fingerprint,
    local_day,
    system_clock,
)
from sandbox.tdt.validation import PDF_MAGIC, validate_acte_form

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "X-Relais-Idempotency-Key"
ACTES = "/modules/actes"
Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[Request, SandboxAccount], Awaitable[Response]]
_LATIN1_TEXT = "text/plain; charset=ISO-8859-1"


def ko(status: int, reasons: Sequence[Reason]) -> Response:
    """A ``KO`` reply listing one ``field: message`` line per reason."""
    lines = "\n".join(f"{r.field}: {r.message}" for r in reasons)
    return Response(
        f"KO\n{lines}\n".encode(), status_code=status, media_type="text/plain; charset=utf-8"
    )


def _ok_id(identifier: int) -> Response:
    return Response(f"OK\n{identifier}\n".encode("ascii"), media_type=_LATIN1_TEXT)


def _ok_generated_id(identifier: int) -> Response:
    """S²LOW's reply to a member reply: ``OK : id généré : <id>``."""
    return Response(
        f"OK : id généré : {identifier}\n".encode("iso-8859-1"), media_type=_LATIN1_TEXT
    )


def _reply_reasons(
    form: RawForm, api: str | None, document_type: str, type_code: str, files: Sequence[FormFile]
) -> list[Reason]:
    """What is wrong with a member reply to a ``document_type`` prefecture message."""
    reasons: list[Reason] = []
    if api != "1":
        reasons.append(Reason("api", "required", "api=1 is required for API calls"))
    allowed = REPLY_TYPES_BY_DOCUMENT[document_type]
    if type_code not in allowed:
        reasons.append(
            Reason(
                "type_envoie",
                "unknown",
                f"a {document_type} accepts replies {sorted(allowed) or 'none'}, not {type_code}",
            )
        )
    if not form.text("type_acte"):
        reasons.append(Reason("type_acte", "required", "the typology of the reply is required"))
    attachments = len(form.files.get("acte_attachments[]", []))
    if len(form.values.get("type_pj[]", [])) != attachments:
        reasons.append(Reason("type_pj[]", "count", f"one typology per attachment ({attachments})"))
    if type_code in {"2-2", "3-3", "3-4", "4-3", "4-4"} and not files:
        reasons.append(Reason("acte_pdf_file", "required", f"a {type_code} needs a document"))
    letters = form.files.get("acte_pdf_file", [])
    if letters and not bytes(letters[0].data).startswith(PDF_MAGIC):
        reasons.append(Reason("acte_pdf_file", "format", "the reply letter is not a PDF"))
    return reasons


def _create_reply(transaction: Transaction) -> Response:
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        f"<import><id>{transaction.id}</id><resultat>OK</resultat>"
        "<message>Transaction created</message></import>\n"
    )
    return Response(body.encode("iso-8859-1"), media_type="application/xml")


class _Api:
    """Handlers of the S²LOW endpoints over one :class:`TdtState`."""

    def __init__(self, state: TdtState, sleep: Sleep) -> None:
        self.state = state
        self.config = state.config
        self.sleep = sleep
        try:
            self.classification_xml = build_retour_classification(state.config.classification)
        except ValidationError as exc:
            raise ConfigurationError(
                f"sandbox TdT: the classification cannot be served: {exc.message}"
            ) from exc

    # -- cross-cutting: faults, authentication ---------------------------------------------

    def _authenticate(self, request: Request) -> SandboxAccount | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        account = self.config.account(login)
        if account is None or not hmac.compare_digest(password.encode(), account.password.encode()):
            return None
        return account

    def _injected_error(self, where: str) -> Response:
        faults = self.state.faults
        headers = {}
        if faults.retry_after is not None:
            headers["Retry-After"] = str(round(faults.retry_after))
        log.info("sandbox_tdt_fault", fault=where, status=faults.error_status)
        return Response(
            f"KO\nsandbox: injected {where} error\n".encode(),
            status_code=faults.error_status,
            headers=headers,
            media_type="text/plain; charset=utf-8",
        )

    def endpoint(
        self, handler: Handler, *, creates: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler with HTTP Basic and the faults, in this order.

        Latency; an injected error (nothing done); authentication; the
        handler; a hang (the work is done, the answer is late); an injected
        error after a successful creation (the work is done, the answer lost).
        """

        async def call(request: Request) -> Response:
            state = self.state
            faults = state.faults
            delay_ms = faults.latency_ms + faults.jitter_ms * state.fault_rng.random()
            hang = state.draw_fault(faults.timeout_rate)
            fail = state.draw_fault(faults.error_rate)
            fail_after = state.draw_fault(faults.error_after_commit_rate) if creates else False
            if delay_ms > 0:
                await self.sleep(delay_ms / 1000)
            if fail:
                state.fault_counters["error"] += 1
                return self._injected_error("pre-commit")
            account = self._authenticate(request)
            if account is None:
                return Response(
                    b"KO\nauthentication: login or password refused\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="S2LOW sandbox"'},
                    media_type="text/plain; charset=utf-8",
                )
            state.advance()
            response = await handler(request, account)
            log.info(
                "sandbox_tdt_call",
                path=request.url.path,
                login=account.login,
                status=response.status_code,
            )
            if hang:
                # The call is done; the answer comes too late for the client.
                state.fault_counters["timeout"] += 1
                await self.sleep(faults.hang_seconds)
            if fail_after and response.status_code == 200:
                state.fault_counters["error_after_commit"] += 1
                return self._injected_error("post-commit")
            return response

        return call

    async def _form(self, request: Request) -> RawForm:
        return await read_form(request, max_file_bytes=self.config.max_total_bytes)

    # -- actes ---------------------------------------------------------------------------

    async def create_acte(self, request: Request, account: SandboxAccount) -> Response:
        state = self.state
        state.count("posts_received", account.login)
        try:
            form = await self._form(request)
        except FormError as exc:
            state.count("rejected_posts", account.login)
            return ko(400, [Reason(exc.field, "format", exc.message)])
        key = request.headers.get(IDEMPOTENCY_HEADER)
        fingerprint = form_fingerprint(form)
        if key:
            known = state.by_key(account.login, "acte", key)
            if known is not None:
                if known.fingerprint != fingerprint:
                    state.count("rejected_posts", account.login)
                    return ko(
                        409,
                        [
                            Reason(
                                IDEMPOTENCY_HEADER,
                                "conflict",
                                f"already used for transaction {known.id} with a different content",
                            )
                        ],
                    )
                state.count("idempotent_replays", account.login)
                return _create_reply(known)
        submission, reasons = validate_acte_form(
            form,
            classification=self.config.classification,
            today=local_day(state.now()),
            max_total_bytes=self.config.max_total_bytes,
        )
        if submission is None:
            state.count("rejected_posts", account.login)
            return ko(400, reasons)
        if state.same_acte(account.login, submission):
            state.count("duplicate_posts", account.login)
        if self.config.reject_duplicate_numbers:
            live = state.live_with_number(account.login, submission.number)
            if live is not None:
                state.count("rejected_posts", account.login)
                return ko(
                    400,
                    [
                        Reason(
                            "number",
                            "duplicate",
                            f"number {submission.number} is already used by transaction {live.id}",
                        )
                    ],
                )
        try:
            transmission = state.build_acte(account, submission)
        except ValidationError as exc:
            state.count("rejected_posts", account.login)
            return ko(400, exc.reasons or [Reason("acte", "invalid", exc.message)])
        transaction = state.record_acte(
            account, submission, transmission, idempotency_key=key, fingerprint=fingerprint
        )
        return _create_reply(transaction)

    async def get_status(self, request: Request, account: SandboxAccount) -> Response:
        state = self.state
        state.count("status_polls", account.login)
        transaction = state.transaction_for(
            account.login, request.query_params.get("transaction", "")
        )
        if transaction is None:
            return ko(404, [Reason("transaction", "unknown", "no such transaction")])
        entry = state.status_entry(transaction)
        body = f"OK\n{entry.status}\n".encode("ascii")
        if entry.document is not None:
            body += entry.document
        if entry.status == ERROR:
            body += b"\n" + entry.message.encode("iso-8859-1", errors="replace") + b"\n"
        return Response(body, media_type=_LATIN1_TEXT)

    async def cancel(self, request: Request, account: SandboxAccount) -> Response:
        state = self.state
        try:
            form = await self._form(request)
        except FormError as exc:
            return ko(400, [Reason(exc.field, "format", exc.message)])
        if form.text("api") != "1":
            return ko(400, [Reason("api", "required", "api=1 is required for API calls")])
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key:
            known = state.by_key(account.login, "cancel", key)
            if known is not None:
                state.count("idempotent_replays", account.login)
                return _ok_id(known.id)
        acte = state.transaction_for(account.login, form.text("id") or "")
        if acte is None or acte.type_code != "1-1":
            return ko(404, [Reason("id", "unknown", "no such acte transaction")])
        if acte.cancellation_id is not None:
            return ko(
                400,
                [Reason("id", "state", f"already cancelled by transaction {acte.cancellation_id}")],
            )
        if acte.status != ACKNOWLEDGED:
            return ko(
                400,
                [
                    Reason(
                        "id",
                        "state",
                        f"only an acknowledged acte (state 4) can be cancelled, "
                        f"this one is in state {acte.status}",
                    )
                ],
            )
        cancellation = state.cancel(
            account, acte, idempotency_key=key, fingerprint=form_fingerprint(form)
        )
        return _ok_id(cancellation.id)

    # -- classification -----------------------------------------------------------------

    async def fetch_classification(self, request: Request, account: SandboxAccount) -> Response:
        self.state.count("classification_fetches", account.login)
        return Response(
            self.classification_xml,
            media_type="application/xml; charset=ISO-8859-1",
        )

    async def request_classification(self, request: Request, account: SandboxAccount) -> Response:
        self.state.count("classification_requests", account.login)
        return Response(
            b"OK\nclassification request sent to the prefecture\n", media_type=_LATIN1_TEXT
        )

    # -- prefecture documents -----------------------------------------------------------

    async def list_documents(self, request: Request, account: SandboxAccount) -> Response:
        rows = [d.row() for d in self.state.visible_documents(account.login)]
        return JSONResponse(rows)

    async def get_document(self, request: Request, account: SandboxAccount) -> Response:
        document = self.state.document_for(account.login, request.query_params.get("id", ""))
        if document is None:
            return ko(404, [Reason("id", "unknown", "no such prefecture document")])
        self.state.count("documents_fetched", account.login)
        return Response(
            document.packed.archive_bytes,
            media_type="application/gzip",
            headers={
                "Content-Disposition": f'attachment; filename="{document.packed.archive_name}"'
            },
        )

    async def mark_read(self, request: Request, account: SandboxAccount) -> Response:
        document = self.state.document_for(
            account.login, request.query_params.get("transaction_id", "")
        )
        if document is None:
            return ko(404, [Reason("transaction_id", "unknown", "no such prefecture document")])
        if not document.read:
            document.read = True
            self.state.count("documents_marked_read", account.login)
        return JSONResponse({"result": "ok"})

    async def create_reply(self, request: Request, account: SandboxAccount) -> Response:
        state = self.state
        try:
            form = await self._form(request)
        except FormError as exc:
            return ko(400, [Reason(exc.field, "format", exc.message)])
        key = request.headers.get(IDEMPOTENCY_HEADER)
        fingerprint = form_fingerprint(form)
        if key:
            known = state.by_key(account.login, "reply", key)
            if known is not None:
                state.count("idempotent_replays", account.login)
                return _ok_generated_id(known.id)
        document = state.document_for(account.login, form.text("id") or "")
        if document is None:
            return ko(404, [Reason("id", "unknown", "no such prefecture document")])
        acte = state.transactions[document.related_transaction_id]
        files = [
            *form.files.get("acte_pdf_file", []),
            *form.files.get("acte_attachments[]", []),
        ]
        type_code = f"{document.type_code[0]}-{form.text('type_envoie') or ''}"
        api = request.query_params.get("api") or form.text("api")
        reasons = _reply_reasons(form, api, document.type_code, type_code, files)
        already = [t for t in document.replies if state.transactions[t].type_code == type_code]
        if already:
            reasons.append(
                Reason("type_envoie", "duplicate", f"{type_code} already sent as {already[0]}")
            )
        nature = self.config.classification.nature(acte.nature_code or 0)
        allowed_typologies = nature.typology_codes if nature is not None else frozenset()
        typologies = [
            ("type_acte", form.text("type_acte") or ""),
            *(
                (f"type_pj[{i}]", value.decode("iso-8859-1"))
                for i, value in enumerate(form.values.get("type_pj[]", []))
            ),
        ]
        for field_name, code in typologies:
            if code and allowed_typologies and code not in allowed_typologies:
                reasons.append(
                    Reason(field_name, "unknown", f"typology {code!r} is not allowed here")
                )
        if reasons:
            return ko(400, reasons)
        try:
            reply = state.reply(
                account,
                document,
                type_code,
                [(f.filename, bytes(f.data)) for f in files],
                idempotency_key=key,
                fingerprint=fingerprint,
            )
        except ValidationError as exc:
            return ko(400, exc.reasons or [Reason("reply", "invalid", exc.message)])
        return _ok_generated_id(reply.id)

    async def list_transactions(self, request: Request, account: SandboxAccount) -> Response:
        names = ("number", "decision_date", "nature_code", "min_submission_date")
        filters = {n: request.query_params[n] for n in names if n in request.query_params}
        return JSONResponse({"transactions": self.state.list_transactions(account.login, filters)})

    # -- control ------------------------------------------------------------------------

    async def stats(self, request: Request) -> Response:
        self.state.advance()
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        log.info("sandbox_tdt_reset")
        return JSONResponse({"result": "ok"})

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    raise ValidationError(
                        "expected a JSON object",
                        reasons=[Reason("body", "type", "a JSON object of knobs")],
                    )
                self.state.faults = self.state.faults.updated(changes)
            except json.JSONDecodeError as exc:
                return JSONResponse({"error": f"not JSON: {exc}"}, status_code=400)
            except ValidationError as exc:
                return JSONResponse(
                    {"error": exc.message, "reasons": [asdict(r) for r in exc.reasons]},
                    status_code=400,
                )
            log.info("sandbox_tdt_faults_changed", **changes)
        return JSONResponse(asdict(self.state.faults))

    def _transaction(self, request: Request) -> Transaction | None:
        raw = request.path_params["transaction_id"]
        return self.state.transactions.get(int(raw)) if raw.isdigit() else None

    async def transmission(self, request: Request) -> Response:
        self.state.advance()
        transaction = self._transaction(request)
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        return Response(
            transaction.packed.archive_bytes,
            media_type="application/gzip",
            headers={
                "Content-Disposition": f'attachment; filename="{transaction.packed.archive_name}"'
            },
        )

    async def transaction(self, request: Request) -> Response:
        self.state.advance()
        transaction = self._transaction(request)
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        return JSONResponse(
            {
                **transaction.summary(),
                "login": transaction.login,
                "archive_name": transaction.packed.archive_name,
                "history": [
                    {
                        "status": e.status,
                        "at": e.at.isoformat(),
                        "has_document": e.document is not None,
                        "message": e.message,
                    }
                    for e in transaction.history
                ],
            }
        )


def create_tdt_sandbox(
    config: SandboxConfig | None = None,
    *,
    clock: Clock = system_clock,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Starlette:
    """The sandbox TdT as an ASGI app.

    ``clock`` (timezone-aware ``datetime`` factory) drives every state change and
    date; ``rng`` (default: seeded with ``config.seed``) drives outcomes and
    faults; ``sleep`` is awaited for latency and hang faults. The app's
    ``state.tdt`` is the :class:`TdtState` (for in-process inspection).
    """
    config = config or SandboxConfig()
    config.check()
    seeded = rng or random.Random(config.seed)  # noqa: S311 - a simulation, not cryptography
    state = TdtState(config, clock, seeded)
    api = _Api(state, sleep)
    routes = [
        Route(
            f"{ACTES}/actes_transac_create.php",
            api.endpoint(api.create_acte, creates=True),
            methods=["POST"],
        ),
        Route(
            f"{ACTES}/actes_transac_get_status.php", api.endpoint(api.get_status), methods=["GET"]
        ),
        Route(
            f"{ACTES}/actes_transac_cancel.php",
            api.endpoint(api.cancel, creates=True),
            methods=["POST"],
        ),
        Route(
            f"{ACTES}/actes_classification_fetch.php",
            api.endpoint(api.fetch_classification),
            methods=["GET"],
        ),
        Route(
            f"{ACTES}/actes_classification_request.php",
            api.endpoint(api.request_classification),
            methods=["GET", "POST"],
        ),
        Route(
            f"{ACTES}/api/list_document_prefecture.php",
            api.endpoint(api.list_documents),
            methods=["GET"],
        ),
        Route(
            f"{ACTES}/actes_transac_get_document.php",
            api.endpoint(api.get_document),
            methods=["GET"],
        ),
        Route(
            f"{ACTES}/api/document_prefecture_mark_as_read.php",
            api.endpoint(api.mark_read),
            methods=["GET", "POST"],
        ),
        Route(
            f"{ACTES}/actes_transac_reponse_create.php",
            api.endpoint(api.create_reply, creates=True),
            methods=["POST"],
        ),
        Route(
            f"{ACTES}/api/list_transactions.php",
            api.endpoint(api.list_transactions),
            methods=["GET"],
        ),
        Route("/sandbox/stats", api.stats, methods=["GET"]),
        Route("/sandbox/reset", api.reset, methods=["POST"]),
        Route("/sandbox/faults", api.faults, methods=["GET", "POST"]),
        Route("/sandbox/transmissions/{transaction_id}", api.transmission, methods=["GET"]),
        Route("/sandbox/transactions/{transaction_id}", api.transaction, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.tdt = state
    return app
