"""S²LOW's Hélios pages, each answering as its PHP source does (the file is named in each
docstring; libriciel/s2low ``public.ssl/modules/helios/``). Authentication is the actes
pages' one (:meth:`sandbox.tdt.endpoints.S2low.account`), which real S²LOW runs before
any module page; an account without rights (``RO``/``NONE``) gets each script's own
"Accès refusé".
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from sandbox.tdt.config import SandboxAccount
from sandbox.tdt.endpoints import Call, S2low
from sandbox.tdt.helios_state import HeliosDesk, PesTransaction
from sandbox.tdt.php import echo, hecho, intval, is_one, redirect
from sandbox.tdt.validation import basename

INDEX_PAGE = "/modules/helios/index.php"
_XML_DECL = b'<?xml version="1.0"?>\n'
_REFUSED = ("RO", "NONE")


def _dom(root: str, children: list[tuple[str, str]]) -> bytes:
    """What ``DOMDocument`` (``formatOutput``) saves: UTF-8, no encoding declared."""
    inner = "".join(
        f"  <{name}>{escape(text)}</{name}>\n" if text else f"  <{name}/>\n"
        for name, text in children
    )
    return _XML_DECL + f"<{root}>\n{inner}</{root}>\n".encode()


def _double_encoded(text: str) -> str:
    """``utf8_encode`` applied to a UTF-8 PHP string (every byte read as Latin-1)."""
    return text.encode("utf-8").decode("latin-1")


def _api_response(tag: str, values: list[tuple[str, str]]) -> Response:
    """``HeliosAPIResponse::displayAndExit``: declared ISO-8859-1, texts as PHP holds them."""
    inner = "".join(f"<{key}>{hecho(value)}</{key}>" for key, value in values)
    body = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        + f"<{tag} >\n        {inner}</{tag}>\n            ".encode()
    )
    return Response(body, media_type="text/xml")


class HeliosPages:
    """The handlers of S²LOW's Hélios API over one :class:`HeliosDesk`."""

    def __init__(self, desk: HeliosDesk, actes: S2low) -> None:
        self.desk = desk
        self.actes = actes

    def _owned(self, account: SandboxAccount, transaction: PesTransaction) -> bool:
        return transaction.login == account.login

    async def import_pes(self, request: Request) -> Response:
        """``api/helios_importer_fichier.php`` → ``HeliosController::importAPIAction``."""
        form = await self.actes._form(request)
        account = self.actes.account(Call(request, form))
        if isinstance(account, Response):
            return account
        if account.permission in _REFUSED:
            return echo("KO\nAccès refusé")
        files = (form.files.get("enveloppe") if form is not None else None) or []
        must_signed = form is not None and is_one(form.text("must_signed"))
        if not files:
            outcome: PesTransaction | str = "Échec lors du téléchargement du fichier"
        else:
            upload = files[0]
            pes = upload.read()  # a PES Aller is parsed whole, as S²LOW does (128 MiB at most)
            assert form is not None
            form.close()
            outcome = self.desk.import_pes(account, basename(upload.filename), pes, must_signed)
        if isinstance(outcome, str):
            children = [("id", ""), ("resultat", "KO"), ("message", _double_encoded(outcome))]
        else:
            children = [
                ("id", str(outcome.id)), ("resultat", "OK"),
                ("message", _double_encoded("Téléchargement du fichier réussi.")),
            ]
        return Response(
            _dom("import", children), media_type="text/xml",
            headers={"Content-Disposition": 'attachment; filename="import.xml"'},
        )

    async def get_status(self, request: Request) -> Response:
        """``api/helios_transac_get_status.php``: ``<transaction>`` id, resultat, message,
        status."""
        call = Call(request, None)
        transaction_id = intval(call.query.get("transaction"))
        values = {"id": str(transaction_id), "resultat": "KO", "message": "", "status": ""}

        def answer() -> Response:
            return _api_response("transaction", list(values.items()))

        if not transaction_id:
            values["message"] = "Pas de numéro de transaction."
            return answer()
        account = self.actes.account(call)
        if isinstance(account, Response):
            return account
        if account.permission != "RW":
            values["message"] = "Accès refusé"
            return answer()
        transaction = self.desk.transaction(transaction_id)
        if transaction is None:
            values["message"] = "Numéro de transaction invalide"
            return answer()
        if not self._owned(account, transaction):
            values["message"] = "Accès refusé"
            return answer()
        self.desk.state.count("pes_status_polls", account.login)
        entry = self.desk.status_entry(transaction)
        values.update(resultat="OK", status=str(entry.status), message=entry.message)
        return answer()

    def _file_page(self, request: Request) -> tuple[SandboxAccount, PesTransaction] | Response:
        call = Call(request, None)
        account = self.actes.account(call)
        if isinstance(account, Response):
            return account
        if account.permission in _REFUSED:
            return redirect("/")
        transaction = self.desk.transaction(intval(call.query.get("id")))
        if transaction is None or not self._owned(account, transaction):
            return redirect(INDEX_PAGE)
        return account, transaction

    async def download_acquit(self, request: Request) -> Response:
        """``helios_download_acquit.php?id=N``: the PES_ACQUIT, or a redirect to the index."""
        found = self._file_page(request)
        if isinstance(found, Response):
            return found
        account, transaction = found
        if transaction.acquit is None:
            return redirect(INDEX_PAGE)
        self.desk.state.count("pes_acquits_fetched", account.login)
        name = f"ACK_{transaction.id}.xml"
        return Response(transaction.acquit, media_type="text/xml",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def download_file(self, request: Request) -> Response:
        """``helios_download_file.php?id=N``: the PES_Aller as posted."""
        found = self._file_page(request)
        if isinstance(found, Response):
            return found
        _, transaction = found
        return Response(transaction.content, media_type="text/xml", headers={
            "Content-Disposition": f'attachment; filename="{transaction.filename}"'})

    async def list_retours(self, request: Request) -> Response:
        """``api/helios_get_list.php`` → ``getPESRetourListAction``: unread PES_Retour."""
        call = Call(request, None)
        account = self.actes.account(call)
        if isinstance(account, Response):
            return account
        if account.permission in _REFUSED:
            return Response(_dom("liste", [("resultat", "KO"), ("message", "Accès refusé")]),
                            media_type="text/xml")
        desk = self.desk
        now = desk.state.now()
        authority = desk.state.config.authority_id(account)
        desk.state.count("pes_retour_listings", account.login)
        rows = "".join(
            f"  <pes_retour>\n    <id>{r.id}</id>\n    <nom>{escape(r.filename)}</nom>\n"
            f"    <date>{r.received_at:%Y-%m-%d %H:%M:%S}</date>\n  </pes_retour>\n"
            for r in desk.unread_retours(account.login)
        )
        body = _XML_DECL + (
            f"<liste>\n  <idColl>{authority}</idColl>\n  <resultat/>\n"
            f"  <message>liste réussi</message>\n"
            f"  <dateDemande>{now:%Y-%m-%d %I:%M:%S}</dateDemande>\n{rows}</liste>\n"
        ).encode()
        return Response(body, media_type="text/xml")

    async def get_retour(self, request: Request) -> Response:
        """``api/helios_get_retour.php?id=N``: the file, or ``<get_retour>`` KO. S²LOW does
        not check that the PES_Retour belongs to the account; neither does the sandbox."""
        call = Call(request, None)
        retour_id = call.query.get("id") or ""
        account = self.actes.account(call)
        if isinstance(account, Response):
            return account
        retour = self.desk.retours.get(intval(retour_id))
        message = None
        if account.permission in _REFUSED:
            message = "Accès refusé"
        elif retour is None:
            message = "retour id n'est pas correcte"
        if message is not None or retour is None:
            return Response(_dom("get_retour", [("id", retour_id), ("resultat", "KO"),
                                                ("message", message or "")]),
                            media_type="text/xml")
        self.desk.state.count("pes_retours_fetched", account.login)
        return Response(retour.content, media_type="text/xml", headers={
            "Content-Disposition": f'attachment; filename="{retour.filename}"'})

    async def mark_read(self, request: Request) -> Response:
        """``api/helios_change_status.php?id=N``: the PES_Retour goes to read."""
        call = Call(request, None)
        account = self.actes.account(call)
        if isinstance(account, Response):
            return account
        retour_id = call.query.get("id") or ""
        if account.permission != "RW":
            return echo("")  # S²LOW fails before its answer exists (no document is sent)
        retour = self.desk.retours.get(intval(retour_id))
        if retour is None:
            result, message = "KO", "Changement de status est echoué."
        else:
            retour.read = True
            result, message = "OK", "reussi de changer status"
            self.desk.state.count("pes_retours_marked_read", account.login)
        return Response(_dom("transaction", [("idRetour", retour_id), ("resultat", result),
                                             ("message", message)]), media_type="text/xml")
