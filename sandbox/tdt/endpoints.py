"""The S²LOW pages the sandbox serves, each answering as its PHP source does.

One method per page of libriciel/s2low ``public.ssl/modules/actes/`` (the file is named in
each docstring); the answer conventions are in :mod:`sandbox.tdt.php`. Every page
authenticates first (``Authentification::detectConnexionID``): a login the sandbox does not
know answers ``KO`` "Le certificat n'est pas valide : aucun compte trouvé" when ``api=1``
is in the request, else a 302 to ``/connexion-status``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from relais.errors import ValidationError
from sandbox.tdt.config import SandboxAccount, SandboxConfig
from sandbox.tdt.files import chunks_of
from sandbox.tdt.forms import FormError, RawForm, read_form
from sandbox.tdt.php import (
    api_requested,
    echo,
    intval,
    is_one,
    json_response,
    latin1,
    php_empty,
    redirect,
    return_and_exit,
)
from sandbox.tdt.stamp import stamp_file_increment
from sandbox.tdt.state import (
    ACKNOWLEDGED,
    ERROR,
    POSTED,
    WAITING_TO_POST,
    WAITING_TO_SIGN,
    TdtState,
    Transaction,
)
from sandbox.tdt.validation import (
    CODE_PJ_RE,
    Refused,
    basename,
    check_acte_post,
    extension_of,
    sniff,
    upload_error,
)

log = structlog.get_logger(__name__)

ADD_PAGE = "/modules/actes/actes_transac_add.php"
INDEX_PAGE = "/modules/actes/index.php"
AUTH_FAILED = "Le certificat n'est pas valide : aucun compte trouvé"
_NO_CACHE = {
    "Expires": "0",
    "Cache-Control": "must-revalidate, post-check=0,pre-check=0",
    "Pragma": "public",
}


class Call:
    """One request: its query, its form (POST pages) and where ``api`` was given."""

    def __init__(self, request: Request, form: RawForm | None) -> None:
        self.request = request
        self.form = form or RawForm()
        self.query = request.query_params

    @property
    def api(self) -> bool:
        return api_requested(self.form.text("api"), self.query.get("api"))

    def ko(self, message: str, redirect_to: str = "/") -> Response:
        return return_and_exit(ok=False, message=message, api=self.api, redirect=redirect_to)


class S2low:
    """The handlers of S²LOW's actes pages over one :class:`TdtState`."""

    def __init__(self, state: TdtState) -> None:
        self.state = state
        self.config: SandboxConfig = state.config

    # -- authentication -------------------------------------------------------------------

    def account(self, call: Call) -> SandboxAccount | Response:
        """The account the request authenticates as, or S²LOW's refusal."""
        header = call.request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        account = None
        if scheme.lower() == "basic":
            try:
                login, _, password = (
                    base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                login, password = "", ""
            found = self.config.account(login)
            if found is not None and hmac.compare_digest(
                password.encode(), found.password.encode()
            ):
                account = found
        if account is None:
            log.info("sandbox_tdt.auth_refused", path=call.request.url.path)
            return call.ko(AUTH_FAILED, "/connexion-status")
        return account

    async def _form(self, request: Request) -> RawForm | None:
        """The POST form; None when PHP would see an empty ``$_POST`` (too large, unreadable)."""
        try:
            return await read_form(request, max_file_bytes=self.config.max_total_bytes)
        except FormError:
            return None

    def _owned(self, account: SandboxAccount, transaction: Transaction) -> bool:
        return transaction.login == account.login

    # -- actes_transac_create.php ---------------------------------------------------------

    async def create_acte(self, request: Request) -> Response:
        """``actes_transac_create.php``: ``OK\\n<id>\\n\\n`` or ``KO\\n<message>\\n``."""
        form = await self._form(request)
        try:
            return await self._create_acte(request, form)
        finally:
            if form is not None:
                form.close()  # the uploads' spools: what is kept was copied to the store

    async def _create_acte(self, request: Request, form: RawForm | None) -> Response:
        state = self.state
        call = Call(request, form)
        if form is None or (not form.values and not form.files):
            state.count("posts_received")
            state.count("rejected_posts")
            return call.ko(
                "La taille totale des fichiers est trop importante "
                f"(max : {self.config.max_total_bytes})",
                ADD_PAGE,
            )
        if sum(len(files) for files in form.files.values()) > self.config.max_file_uploads:
            state.count("posts_received")
            state.count("rejected_posts")
            return call.ko(
                f"Le nombre d'annexes est trop important (max : {self.config.max_file_uploads})",
                ADD_PAGE,
            )
        account = self.account(call)
        if isinstance(account, Response):
            state.count("posts_received")
            return account
        state.count("posts_received", account.login)
        if account.permission not in ("RW", "CS"):
            state.count("rejected_posts", account.login)
            return call.ko("Accès refusé")
        if state.same_acte(account.login, form.text("number") or ""):
            state.count("duplicate_posts", account.login)
        try:
            submission = check_acte_post(
                form,
                now=state.now(),
                number_taken=lambda number: state.number_taken(account.login, number),
                classification_date=state.received_classification[account.login][0]
                if account.login in state.received_classification
                else None,
                api=is_one(form.text("api")) or is_one(call.query.get("api")),
            )
        except Refused as refused:
            state.count("rejected_posts", account.login)
            log.info("sandbox_tdt.acte_refused", login=account.login, message=refused.message)
            return call.ko(refused.message, ADD_PAGE)
        try:
            transmission = state.build_acte(account, submission)
        except ValidationError as exc:
            state.count("rejected_posts", account.login)
            return call.ko(f"Erreur lors de la génération de l'acte : {exc.message}", ADD_PAGE)
        # S²LOW writes the tar.gz to disk, then checkArchiveSize compares its file size
        stored = await asyncio.to_thread(state.write_acte, transmission, submission)
        size = stored.size
        if state.number_taken(account.login, submission.number):  # posted meanwhile
            stored.remove()
            state.count("rejected_posts", account.login)
            return call.ko(
                "Un acte portant le même numéro interne existe déjà dans la base de données.\n"
                "Il faut peut-être ajouter un suffixe au numéro.",
                ADD_PAGE,
            )
        if size > self.config.max_total_bytes:
            stored.remove()
            state.count("rejected_posts", account.login)
            return call.ko(
                "la taille d'archive générée n'est pas conforme. filename="
                f"{account.siren}/{submission.number}/{transmission.archive_name}\n"
                f"La taille de l'archive est trop élevée, {size} octets "
                f"(maximum {self.config.max_total_bytes} octets autorisés)",
                ADD_PAGE,
            )
        if submission.en_attente:
            initial = WAITING_TO_POST
        elif submission.must_signed or account.must_sign:
            initial = WAITING_TO_SIGN
        elif account.permission == "CS":
            initial = WAITING_TO_POST
        else:
            initial = POSTED
        problems = state.classification.check(
            submission.nature_code, submission.matieres, (submission.type_acte, *submission.type_pj)
        )
        out_of_classification = (
            "Classification ou typologie absente de la classification en vigueur ("
            + "; ".join(p.message for p in problems)
            + ")"
            if problems
            else None
        )
        transaction = state.record_acte(
            account,
            submission,
            transmission,
            stored,
            initial_status=initial,
            out_of_classification=out_of_classification,
        )
        if submission.signature is not None:  # recorded with its acte_pdf_file_sign
            state.count("signed_posts", account.login)
        return return_and_exit(
            ok=True,
            message=f"Création de l'enveloppe n°{transaction.envelope_id}. Résultat ok.",
            api=call.api,
            redirect=f"/modules/actes/actes_transac_show.php?id={transaction.id}",
            api_message=f"{transaction.id}\n",
        )

    # -- actes_transac_get_status.php -----------------------------------------------------

    async def get_status(self, request: Request) -> Response:
        """``actes_transac_get_status.php``: ``OK\\n<state>\\n`` + the stored return file."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        state = self.state
        if account.permission != "RW":  # User::canEdit
            return echo("KO\nAccès refusé")
        transaction = self._requested(call, "transaction")
        if transaction is None:
            return echo("KO\nNuméro de transaction invalide.")
        if not self._owned(account, transaction):
            return echo("KO\nAccès refusé")
        state.count("status_polls", account.login)
        entry = state.status_entry(transaction)
        body = f"OK\n{entry.status}\n".encode("ascii")
        body += state.flux_retour(transaction, entry.status)
        if entry.status == ERROR:
            body += latin1(entry.message)
        return Response(body, media_type="text/html; charset=UTF-8")

    def _requested(self, call: Call, name: str) -> Transaction | None:
        unique_id = call.query.get("unique_id")
        if unique_id:
            return self.state.by_unique_id(unique_id)
        transaction_id = intval(call.query.get(name))
        return self.state.transaction(transaction_id) if transaction_id else None

    # -- actes_transac_cancel.php ---------------------------------------------------------

    async def cancel(self, request: Request) -> Response:
        """``actes_transac_cancel.php``: the id of the new cancellation transaction (type 6)."""
        form = await self._form(request)
        call = Call(request, form)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        state = self.state
        if account.permission not in ("RW", "TT"):
            return call.ko("Accès refusé")
        related = (form.text("id") if form else None) or ""
        if php_empty(related):
            return call.ko("Pas d'identifiant de transaction à annuler spécifié.", INDEX_PAGE)
        acte = state.transaction(related)
        if acte is None:
            return call.ko("Erreur d'initialisation de la transaction.", INDEX_PAGE)
        show = f"/modules/actes/actes_transac_show.php?id={acte.id}"
        if acte.s2low_type != "1":
            return call.ko("Ce type de transaction ne peut pas être annulé.", show)
        if state.pending_cancellation(acte):
            return call.ko(
                "Une demande d'annulation est déjà en cours pour cette transaction.", show
            )
        if not self._owned(account, acte):
            return call.ko("Accès refusé.", INDEX_PAGE)
        if acte.status != ACKNOWLEDGED:
            return call.ko(
                "Impossible d'annuler une transaction qui n'est pas en état « Acquittement reçu ».",
                show,
            )
        cancellation = state.cancel(account, acte)
        return return_and_exit(
            ok=True,
            message="Création transaction d'annulation réussie. "
            f"Enveloppe n°{cancellation.envelope_id} créée.",
            api=call.api,
            redirect=show,
            api_message=f"{cancellation.id}\n",
        )

    # -- classification -------------------------------------------------------------------

    async def fetch_classification(self, request: Request) -> Response:
        """``actes_classification_fetch.php``: the stored RetourClassification + ``\\r\\n``."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        if account.permission not in ("RW", "CS"):
            return call.ko("Accès refusé")
        stored = self.state.received_classification.get(account.login)
        if stored is None:
            return call.ko("Erreur de récupération de la dernière classification.")
        self.state.count("classification_fetches", account.login)
        return Response(
            stored[1] + b"\r\n",
            headers={
                "Content-type": "text/xml;charset=iso-8859-1",
                "Content-disposition": 'attachment; filename="classification.xml"',
                **_NO_CACHE,
            },
        )

    async def request_classification(self, request: Request) -> Response:
        """``actes_classification_request.php``: a 7-1 transaction, ``OK\\n<id>\\n\\n``."""
        form = await self._form(request) if request.method == "POST" else None
        call = Call(request, form)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        if account.permission not in ("RW", "TT"):
            return call.ko("Accès refusé")
        state = self.state
        if self.config.restrict_classification_requests and state.requested_today(account.login):
            return call.ko("La dernière demande de classification date de moins d'un jour.")
        transaction = state.request_classification(account)
        return return_and_exit(
            ok=True,
            message=f"Création de l'enveloppe n°{transaction.envelope_id} contenant une "
            "demande de classification. Résultat OK.",
            api=call.api,
            redirect=f"/modules/actes/actes_transac_show.php?id={transaction.id}",
            api_message=f"{transaction.id}\n",
        )

    # -- listings (controller/ActesAPIController.php) --------------------------------------

    async def list_actes(self, request: Request) -> Response:
        """``api/list_actes.php`` → ``ActesAPIController::listActesAction``."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        state = self.state
        status_id = _get_int(call, "status_id", 0)
        offset = _get_int(call, "offset", 0)
        limit = _get_int(call, "limit", 100)
        try:
            min_date = _get_date(call, "min_date")
            max_date = _get_date(call, "max_date")
        except ValueError:
            # RequestHelper::checkDate throws "min_date n'est pas une date", uncaught: PHP dies.
            return Response(b"", status_code=500)
        if offset < 0 or limit < 0:
            # PostgreSQL refuses a negative OFFSET or LIMIT; PHP dies with an error page.
            return Response(b"", status_code=500)
        state.count("listings", account.login)
        listed = state.list_actes(account.login, status_id, min_date, max_date)
        rows = listed[offset : offset + limit]
        result = {
            "status_id": str(status_id),
            "authority_id": str(self.config.authority_id(account)),
            "offset": str(offset),
            "limit": str(limit),
            "transactions": [_acte_row(t) for t in rows],
        }
        return json_response(result)

    async def list_documents(self, request: Request) -> Response:
        """``api/list_document_prefecture.php`` → ``listDocumentPrefectureAction``."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        rows = [
            {
                "id": t.id,
                "type": t.s2low_type,
                "related_transaction_id": t.related_id,
                "number": t.number,
                "unique_id": t.id_acte,
                "last_status_id": t.status,
            }
            for t in self.state.unread_documents(account.login)
        ]
        return json_response(rows)

    async def mark_read(self, request: Request) -> Response:
        """``api/document_prefecture_mark_as_read.php``: always ``{"result":"ok"}``."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        document = self.state.transaction(_get_int(call, "transaction_id", 0))
        if document is not None and self._owned(account, document) and not document.read:
            document.read = True
            self.state.count("documents_marked_read", account.login)
        return json_response({"result": "ok"})

    # -- documents ------------------------------------------------------------------------

    async def get_document(self, request: Request) -> Response:
        """``actes_transac_get_document.php``: a 302 to the message's archive; for an acte,
        one line ``type-state-id`` per related prefecture message."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        state = self.state
        if account.permission == "NONE":  # User::canAccess
            return call.ko("Accès refusé")
        transaction = self._requested(call, "id")
        if transaction is None:
            return echo("KO\nNuméro de transaction invalide.", media_type="text/plain")
        if transaction.s2low_type == "1":
            return echo(self._courrier_lines(transaction), media_type="text/plain")
        state.count("documents_fetched", account.login)
        return redirect(f"actes_download_file.php?env={transaction.envelope_id}")

    def _courrier_lines(self, acte: Transaction) -> str:
        """``ActesTransaction::getCourrierInfo`` printed as ``type-state-id`` lines: each
        transaction related to the acte, replaced by its replies (keeping its type) when it
        has some."""
        entries: dict[int, str] = {}
        transactions = self.state.transactions
        for related in sorted(t for t in transactions if transactions[t].related_id == acte.id):
            kind = transactions[related].s2low_type
            replies = sorted(
                t
                for t in transactions
                if transactions[t].related_id == related and transactions[t].s2low_type != "6"
            )
            for key in replies or [related]:
                entries[key] = kind
        return "".join(
            f"{kind}-{transactions[key].status}-{key}\n" for key, kind in entries.items()
        )

    async def download_file(self, request: Request) -> Response:
        """``actes_download_file.php``: an envelope's .tar.gz (``env``) or one file (``file``,
        stamped with ``tampon=true``)."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        state = self.state
        file_id = call.query.get("file")
        env_id = call.query.get("env")
        if file_id is not None and file_id.isdigit():
            included = state.files.get(int(file_id))
            owner = state.transaction(included.transaction_id) if included else None
            if included is None or owner is None or not self._owned(account, owner):
                return redirect(INDEX_PAGE)
            if call.query.get("tampon") and included.name.endswith(".pdf"):
                state.count("stamped_fetched", account.login)
                increment = await asyncio.to_thread(
                    stamp_file_increment, included.path, self._stamp_lines(owner)
                )
                name = basename(included.name)
                # the acte's file then the stamp's bytes, read in chunks: never whole in memory
                return StreamingResponse(
                    _served(included.path, increment),
                    headers={
                        "Content-type": "application/pdf",
                        "Content-Disposition": f"attachment; filename={name}",
                        "Content-Length": str(included.size + len(increment)),
                        **_NO_CACHE,
                    },
                )
            return StreamingResponse(
                _served(included.path),
                headers={
                    "Content-type": included.mimetype,
                    "Content-Length": str(included.size),
                    "Content-disposition": "attachment; filename="
                    f'"{included.posted_filename or included.name}"',
                    **_NO_CACHE,
                },
            )
        if env_id is not None and env_id.isdigit():
            envelope = state.envelopes.get(int(env_id))
            if envelope is None or envelope.login != account.login:
                return redirect(INDEX_PAGE)
            return StreamingResponse(
                _served(envelope.path),
                headers={
                    "Content-type": "application/x-gzip",
                    "Content-Length": str(envelope.size),
                    "Content-disposition": f'attachment; filename="{envelope.archive_name}"',
                    **_NO_CACHE,
                },
            )
        return redirect("/")

    def _stamp_lines(self, acte: Transaction) -> list[str]:
        received = next((e.at for e in acte.history if e.status == ACKNOWLEDGED), None)
        lines = [
            f"Envoye en prefecture le {acte.posted_at.date():%d/%m/%Y}",
            f"Recu en prefecture le {received.date():%d/%m/%Y}" if received else "",
            f"ID : {acte.id_acte}",
        ]
        return [line for line in lines if line]

    async def get_tampon(self, request: Request) -> Response:
        """``actes_transac_get_tampon.php``: a 302 to the stamped acte PDF once acknowledged."""
        call = Call(request, None)
        account = self.account(call)
        if isinstance(account, Response):
            return account
        if account.permission != "RW":  # User::canEdit
            return echo("KO\nAccès refusé")
        raw = call.query.get("transaction")
        if raw is not None and raw != "" and not (raw.isascii() and raw.isdigit()):
            return echo("transaction n'est pas un entier")
        transaction = self._requested(call, "transaction")
        if transaction is None:
            return echo("KO\nNuméro de transaction invalide.")
        if not self._owned(account, transaction):
            return echo("KO\nAccès refusé")
        if not transaction.has_status(ACKNOWLEDGED):
            return echo("KO\nPas d'acquittement recu")
        for included in transaction.files:
            if included.posted_filename.lower().endswith("pdf"):
                return Response(
                    b"",
                    status_code=302,
                    headers={"Location": f"actes_download_file.php?file={included.id}&tampon=true"},
                )
        return echo("")

    # -- actes_transac_post_confirm_api.php -----------------------------------------------

    async def post_confirm(self, request: Request) -> Response:
        """``actes_transac_post_confirm_api.php``: post an acte waiting in 17; the answer is a
        302 to ``url_return`` with ``%%ERROR%%`` (0 or 1) and ``%%MESSAGE%%`` replaced."""
        call = Call(request, None)
        url_return = call.query.get("url_return") or ""

        def back(error: int, message: str) -> Response:
            location = url_return.replace("%%ERROR%%", str(error)).replace("%%MESSAGE%%", message)
            # PHP sends the header's bytes as they are: UTF-8.
            wire = location.encode("utf-8", errors="replace").decode("latin-1")
            return Response(b"", status_code=302, headers={"Location": wire})

        account = self.account(call)
        if isinstance(account, Response):
            return account
        if account.permission not in ("RW", "TT"):
            return back(1, "Accès refusé")
        raw_id = call.query.get("id")
        if php_empty(raw_id):
            return back(1, "Pas d'identifiant de transaction spécifié")
        transaction = self.state.transaction(raw_id)
        if transaction is None:
            return back(1, "Erreur d'initialisation de la transaction.")
        if not self._owned(account, transaction):
            return back(1, "Accès refusé")
        if transaction.status != WAITING_TO_POST:
            return back(1, "La transaction n'est pas dans le statut « En attente d'être posté»")
        self.state.release(
            transaction,
            message="La transaction a été postée par l'agent télétransmetteur " + account.login,
        )
        return back(0, "")

    # -- actes_transac_reponse_create.php -------------------------------------------------

    async def create_reply(self, request: Request) -> Response:
        """``actes_transac_reponse_create.php``: ``OK : id généré : N`` when ``api`` is in the
        query string, ``OK\\nN\\n\\n`` when only in the POST."""
        form = await self._form(request)
        try:
            return await self._create_reply(request, form)
        finally:
            if form is not None:
                form.close()

    async def _create_reply(self, request: Request, form: RawForm | None) -> Response:
        call = Call(request, form)
        get_api = not php_empty(call.query.get("api"))
        form = form or RawForm()

        def out(message: str) -> Response:
            """``sortir_atrc``: ``KO : message`` (query api) or ``returnAndExit``."""
            if get_api:
                return Response(f"KO : {message}".encode(), media_type="text/plain")
            return call.ko(message, "/modules/actes/actes_transac_repondre.php")

        account = self.account(call)
        if isinstance(account, Response):
            return account
        if account.permission not in ("RW", "CS"):
            return out("Accès refusé")
        state = self.state
        document = state.transaction(form.text("id"))
        type_acte = form.text("type_acte") or ""
        if php_empty(type_acte):
            return call.ko("Erreur lors de la réception du fichier : typologie absente")
        type_envoie = form.text("type_envoie") or ""
        files: list[tuple[str, str, bytes]] = []
        errors = ""
        letters = form.files.get("acte_pdf_file", [])
        if letters:
            letter = letters[0]
            if upload_error(letter) == "Aucun fichier n'a été présenté":
                return out("Envoi de fichier illégal.")
            data = letter.read()  # a reply letter: small
            mimetype = sniff(data)
            if extension_of(mimetype) not in ("pdf", "jpg", "png", "xml"):
                errors += (
                    "Erreur de validation du fichier de l'acte :\n"
                    f'Le fichier de réponse " {basename(letter.filename)} " est de type '
                    f'" {mimetype} ". Fichier PDF, XML, PNG ou JPEG requis.\n'
                )
            elif CODE_PJ_RE.fullmatch(type_acte) is None:
                errors += (
                    "Erreur de validation du fichier de l'acte :\n"
                    "Le code de la PJ doit faire 5 caractères\n"
                )
            else:
                files.append((letter.filename, mimetype, data))
        type_pj = [v.decode("iso-8859-1") for v in form.values.get("type_pj[]", [])]
        for i, annex in enumerate(form.files.get("acte_attachments[]", [])):
            if not annex.filename:
                continue
            code = type_pj[i] if i < len(type_pj) else ""
            if php_empty(code):
                return call.ko(
                    f"Erreur lors de la réception du fichier annexe {annex.filename} : "
                    "typologie absente"
                )
            data = annex.read()
            mimetype = sniff(data)
            if extension_of(mimetype) not in ("pdf", "jpg", "png", "xml"):
                errors += (
                    "Erreur de validation d'un fichier de pièce jointe :\n"
                    f'Le fichier attaché " {basename(annex.filename)} " est de type '
                    f'" {mimetype} ". Fichier PDF, XML, PNG ou JPEG requis.\n'
                )
            elif CODE_PJ_RE.fullmatch(code) is None:
                errors += (
                    "Erreur de validation d'un fichier de pièce jointe :\n"
                    "Le code de la PJ doit faire 5 caractères\n"
                )
            else:
                files.append((annex.filename, mimetype, data))
        if errors:
            return out(errors)
        type_code, type_reponse, problem = _reply_type(document, type_envoie)
        if problem:
            return out(f"Erreur lors de la génération de l'acte : {problem}")
        assert document is not None and type_code is not None
        if not self._owned(account, document):
            return out("Erreur lors de la génération de l'acte : Mauvais type de transaction.")
        if not files:
            return out("Erreur lors de la génération de l'acte : aucun fichier de réponse")
        if type_code != "3-4":
            files = files[:1]
        try:
            reply = state.reply(account, document, type_code, type_reponse, files)
        except (ValidationError, ValueError) as exc:
            text = exc.message if isinstance(exc, ValidationError) else str(exc)
            return out(f"Erreur lors de la génération de l'acte : {text}")
        if get_api:
            return Response(f"OK : id généré : {reply.id}\n".encode(), media_type="text/plain")
        return return_and_exit(
            ok=True,
            message=f"Création de l'envelope n°{reply.envelope_id}. Résultat ok.",
            api=call.api,
            redirect=f"/modules/actes/actes_transac_show.php?id={reply.id}",
            api_message=f"{reply.id}\n",
        )


def _reply_type(
    document: Transaction | None, type_envoie: str
) -> tuple[str | None, int | None, str | None]:
    """The message a reply becomes (``generateReponseCourrierXMLFile``), or S²LOW's error."""
    if (
        document is None
        or document.s2low_type not in {"2", "3", "4"}
        or not (document.is_prefecture_message)
    ):
        return None, None, "Mauvais type de transaction."
    kind = document.s2low_type
    if kind == "2":
        return "2-2", _int_or_none(type_envoie), None
    if type_envoie.strip() == "3":
        return f"{kind}-3", 3, None
    if type_envoie.strip() == "4":
        return f"{kind}-4", 4, None
    return None, None, "Vous devez choisir un type de réponse"


def _int_or_none(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _get_int(call: Call, name: str, default: int) -> int:
    """``Recuperateur::getInt``: empty (absent, "" or "0") gives the default, else intval."""
    value = call.query.get(name)
    if php_empty(value):
        return default
    return intval(value)


def _get_date(call: Call, name: str) -> datetime | None:
    """``Recuperateur::getDate``: None when absent or empty, ValueError when unreadable."""
    value = call.query.get(name)
    if php_empty(value):
        return None
    assert value is not None
    return datetime.fromisoformat(value.strip())


def _acte_row(transaction: Transaction) -> dict[str, str]:
    """A row of ``getListByStatusAndAuthority`` after ``legacy_encode_array``: strings."""
    return {
        "id": str(transaction.id),
        "subject": transaction.subject,
        "number": transaction.number,
        "date": transaction.decision_date.isoformat() if transaction.decision_date else "",
        "nature_descr": transaction.nature_descr,
        "classification": transaction.classification,
        "type": transaction.s2low_type,
    }


def _served(path: Path, tail: bytes = b"") -> Iterator[bytes]:
    """The file's bytes in chunks (:data:`sandbox.tdt.files.CHUNK`), then ``tail``; Starlette
    iterates it in a thread."""
    yield from chunks_of(path)
    if tail:
        yield tail
