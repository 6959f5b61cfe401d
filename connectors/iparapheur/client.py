"""The i-Parapheur connector: the operations Relais uses, typed in and out.

Each call: zeep builds the envelope from the WSDL (off the event loop: documents are
base64-encoded there), the member's httpx client posts it to the member's endpoint and
reads the reply up to the operation's size cap, and zeep parses the reply off the event
loop. Every failure leaves as a :class:`relais.errors.PartnerError`
(:mod:`connectors.iparapheur.errors`).

Order that keeps a signature safe (Pastell's own warning in ``IParapheur::getSignature``):
:meth:`IParapheurConnector.get_signed` → store and journal the bytes →
:meth:`IParapheurConnector.archive` (or :meth:`delete_rejected` for a rejected dossier).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
import zeep
from lxml import etree
from requests import Response
from zeep.exceptions import Error as ZeepError
from zeep.transports import AsyncTransport
from zeep.wsdl import Document

from connectors.iparapheur.errors import PARTNER, http_status_error, refused, translated
from connectors.iparapheur.models import (
    CreateOutcome,
    DossierRequest,
    DossierStatus,
    LogEntry,
    SignatureState,
    SignedDossier,
)
from connectors.iparapheur.statuses import status_from_history
from connectors.iparapheur.wsdl import NAMESPACE, load_wsdl, settings
from relais.errors import PartnerPermanentError, PartnerReplyError, PartnerReplyTooLargeError

log = structlog.get_logger(__name__)

DUPLICATE_TEXT = "déjà présent"
"""Part of i-Parapheur's KO message for a DossierID it already holds ("Le nom de dossier
est déjà présent dans le Parapheur: dossierID = X")."""

SMALL_REPLY_BYTES = 2 * 1024 * 1024
DOSSIER_REPLY_BYTES = 96 * 1024 * 1024
"""Reply caps: status, create, archive and search replies are small; ``GetDossier``
carries the document, the signature and the annexes in base64 (4/3 of their size)."""

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


class IParapheurConnector:
    """One member's i-Parapheur account: its endpoint, httpx client and the shared WSDL."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        endpoint: str,
        wsdl: str | Path | Document,
        member: str | None = None,
        dossier_reply_bytes: int = DOSSIER_REPLY_BYTES,
        small_reply_bytes: int = SMALL_REPLY_BYTES,
    ) -> None:
        document = wsdl if isinstance(wsdl, Document) else load_wsdl(wsdl)
        saved_headers = dict(http.headers)
        transport = AsyncTransport(client=http, wsdl_client=httpx.Client())
        http.headers = saved_headers  # zeep's transport replaces the client's headers
        self._zeep = zeep.AsyncClient(wsdl=document, transport=transport, settings=settings())
        self._binding = self._zeep.service._binding
        self._http = http
        self._endpoint = endpoint
        self._member = member
        self._dossier_cap = dossier_reply_bytes
        self._small_cap = small_reply_bytes

    async def aclose(self) -> None:
        """Close zeep's own WSDL client (the member's httpx client belongs to the caller)."""
        wsdl_client = getattr(self._zeep.transport, "wsdl_client", None)
        if isinstance(wsdl_client, httpx.Client):
            wsdl_client.close()

    # -- operations -------------------------------------------------------------------

    async def create_dossier(self, request: DossierRequest) -> CreateOutcome:
        """``CreerDossier``. A dossier i-Parapheur already holds under this id (a retried
        create) is :attr:`CreateOutcome.ALREADY_EXISTS`, never a second dossier."""
        reply = await self._call("CreerDossier", self._small_cap, **_creer_dossier_args(request))
        code, message, severity = _message_retour(reply)
        if code == "OK":
            log.info("iparapheur.dossier_created", dossier_id=request.dossier_id,
                     member=self._member)
            return CreateOutcome.CREATED
        if code == "KO" and DUPLICATE_TEXT in (message or ""):
            log.info("iparapheur.dossier_already_exists", dossier_id=request.dossier_id,
                     member=self._member)
            return CreateOutcome.ALREADY_EXISTS
        raise refused("CreerDossier", code, message, severity)

    async def get_status(self, dossier_id: str) -> DossierStatus:
        """``GetHistoDossier``: the state the last ``LogDossier`` gives (no history: not found)."""
        reply = await self._call("GetHistoDossier", self._small_cap, dossier_id)
        entries = [_log_entry(item) for item in (_get(reply, "LogDossier") or [])]
        return status_from_history(dossier_id, entries)

    async def get_signed(self, dossier_id: str) -> SignedDossier:
        """``GetDossier`` after the circuit: the signature or signed file, and the bordereau."""
        reply = await self._call("GetDossier", self._dossier_cap, dossier_id)
        code, message, severity = _message_retour(reply)
        if code != "OK":
            raise refused("GetDossier", code, message, severity)
        signature = _get(reply, "SignatureDocPrincipal")
        pes = _get(reply, "FichierPES")
        principal = _get(reply, "DocPrincipal")
        annexes = _get(_get(reply, "DocumentsAnnexes"), "DocAnnexe") or []
        last = annexes[-1] if annexes else None
        metadata = {
            str(_get(item, "nom")): str(_get(item, "valeur") or "")
            for item in (_get(_get(reply, "MetaDonnees"), "MetaDonnee") or [])
        }
        return SignedDossier(
            dossier_id=dossier_id,
            signature=_doc_bytes(signature),
            signature_content_type=_doc_type(signature),
            signed_file=_doc_bytes(pes) if pes is not None else _doc_bytes(principal),
            signed_file_name=None if pes is not None else _get(reply, "NomDocPrincipal"),
            is_xml=pes is not None,
            bordereau=_doc_bytes(_get(last, "fichier")) if last is not None else None,
            bordereau_name=str(_get(last, "nom")).strip('"') if last is not None else None,
            public_annotation=_get(reply, "AnnotationPublique"),
            metadata=metadata,
        )

    async def archive(self, dossier_id: str, *, action: str = "EFFACER") -> str | None:
        """``ArchiverDossier`` (``EFFACER`` by default, as Pastell); the URL it may return.

        Call only after the signature is stored and journalled."""
        reply = await self._call(
            "ArchiverDossier", self._small_cap, DossierID=dossier_id, ArchivageAction=action
        )
        code, message, severity = _message_retour(reply)
        if code != "OK":
            raise refused("ArchiverDossier", code, message, severity)
        url = _get(reply, "URL")
        return str(url) if url else None

    async def delete_rejected(self, dossier_id: str) -> None:
        """``EffacerDossierRejete``: remove a rejected dossier, once its rejection is journalled."""
        reply = await self._call("EffacerDossierRejete", self._small_cap, dossier_id)
        code, message, severity = _message_retour(reply)
        if code != "OK":
            raise refused("EffacerDossierRejete", code, message, severity)

    async def find_dossiers(self, dossier_ids: Sequence[str]) -> dict[str, DossierStatus]:
        """``RechercherDossiers`` by ids: the ones i-Parapheur holds, with their last status.

        Used to settle a create whose outcome is unknown (timeout after sending)."""
        if not dossier_ids:
            return {}
        reply = await self._call(
            "RechercherDossiers", self._small_cap, DossierID=list(dossier_ids)
        )
        found: dict[str, DossierStatus] = {}
        # zeep unwraps a response whose only child is the LogDossier list
        items = reply if isinstance(reply, list) else (_get(reply, "LogDossier") or [])
        for item in items:
            entry = _log_entry(item)
            if entry.name in dossier_ids:  # here ``nom`` is the DossierID, not an actor
                status = status_from_history(entry.name, [entry])
                found[entry.name] = dataclasses.replace(status, actor=None)
        return found

    async def reconcile_create(self, request: DossierRequest) -> CreateOutcome:
        """Create unless i-Parapheur already holds the dossier (a create whose reply was lost)."""
        found = await self.find_dossiers([request.dossier_id])
        status = found.get(request.dossier_id)
        if status is not None and status.state is not SignatureState.NOT_FOUND:
            return CreateOutcome.ALREADY_EXISTS
        return await self.create_dossier(request)

    # -- plumbing ---------------------------------------------------------------------

    async def _call(self, operation: str, cap: int, *args: Any, **kwargs: Any) -> Any:
        with translated(operation, self._endpoint):
            body = await asyncio.to_thread(self._envelope, operation, args, kwargs)
            response = await self._post(operation, body, cap)
            if response.status_code != 200 and b"Envelope" not in response.content[:1024]:
                raise http_status_error(operation, response.status_code, self._endpoint)
            return await asyncio.to_thread(self._read, operation, response)

    def _read(self, operation: str, response: Response) -> Any:
        try:
            return self._binding.process_reply(self._zeep, self._binding.get(operation), response)
        except (AttributeError, TypeError) as exc:
            # zeep parses in recovery mode (lenient reading): text that is no XML at all
            # recovers to nothing and fails inside zeep instead of raising a parse error
            raise PartnerReplyError(
                f"{operation}: i-Parapheur's answer is not a SOAP envelope", partner=PARTNER
            ) from exc

    def _envelope(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        try:
            envelope = self._zeep.create_message(self._zeep.service, operation, *args, **kwargs)
        except (ZeepError, TypeError, ValueError) as exc:
            raise PartnerPermanentError(
                f"{operation}: the request does not fit i-Parapheur's contract: {exc}",
                partner=PARTNER,
            ) from exc
        _nil_documents_keep_their_content_type(envelope)
        data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        return data

    async def _post(self, operation: str, body: bytes, cap: int) -> Response:
        async with self._http.stream(
            "POST", self._endpoint, content=body, headers=SOAP_HEADERS
        ) as reply:
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise PartnerReplyTooLargeError(
                        f"{operation}: i-Parapheur's answer is larger than {cap} bytes",
                        partner=PARTNER,
                    )
                chunks.append(chunk)
        response = Response()
        response._content = b"".join(chunks)
        response.status_code = reply.status_code
        response.headers.update(reply.headers)
        return response


XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
XMIME_CONTENT_TYPE = "{http://www.w3.org/2005/05/xmlmime}contentType"
NIL_DOCUMENTS = {f"{{{NAMESPACE}}}VisuelPDF": "application/pdf"}


def _nil_documents_keep_their_content_type(envelope: etree._Element) -> None:
    """``VisuelPDF`` is required and nillable, and its type (``TypeDoc``) requires
    ``xmime:contentType``: a nil ``VisuelPDF`` is valid only with the attribute, which
    zeep does not write on a nil element (caught by the WSDL schema check)."""
    for element in envelope.iter(*NIL_DOCUMENTS):
        if element.get(XSI_NIL) == "true" and element.get(XMIME_CONTENT_TYPE) is None:
            element.set(XMIME_CONTENT_TYPE, NIL_DOCUMENTS[element.tag])


def _creer_dossier_args(request: DossierRequest) -> dict[str, Any]:
    """``CreerDossierRequest``'s fields; nillable elements the WSDL requires are sent nil."""
    args: dict[str, Any] = {
        "TypeTechnique": request.technical_type,
        "SousType": request.sub_type,
        "DossierID": request.dossier_id,
        "DocumentPrincipal": _doc(request.document, request.document_content_type),
        "Visibilite": request.visibility.value,
        "VisuelPDF": _doc(request.visual_pdf, "application/pdf") if request.visual_pdf else None,
        "XPathPourSignatureXML": request.xpath_for_xml_signature,
        "MetaDataTdtACTES": None,
        "AnnotationPublique": request.public_annotation,
        "AnnotationPrivee": request.private_annotation,
        "DateLimite": request.deadline.isoformat() if request.deadline else None,
    }
    if request.document_name:
        args["NomDocPrincipal"] = request.document_name
    if request.sender_email:
        args["EmailEmetteur"] = request.sender_email
    if request.acte is not None:
        args["MetaDataTdtACTES"] = {
            "nature": request.acte.nature,
            "classification": request.acte.classification,
            "date": request.acte.date.isoformat(),
            "objet": request.acte.objet,
        }
    if request.annexes:
        args["DocumentsAnnexes"] = {
            "DocAnnexe": [
                {
                    "nom": annex.name,
                    "fichier": _doc(annex.content, annex.content_type),
                    "mimetype": annex.content_type,
                    "encoding": annex.encoding,
                }
                for annex in request.annexes
            ]
        }
    if request.metadata:
        args["MetaData"] = {
            "MetaDonnee": [{"nom": k, "valeur": v} for k, v in request.metadata.items()]
        }
    return args


def _doc(content: bytes, content_type: str) -> dict[str, Any]:
    return {"_value_1": content, "contentType": content_type}


def _get(value: Any, name: str) -> Any:
    if value is None:
        return None
    try:
        return value[name]
    except (KeyError, TypeError, IndexError):
        return getattr(value, name, None)


def _doc_bytes(doc: Any) -> bytes | None:
    if doc is None:
        return None
    content = _get(doc, "_value_1")
    if isinstance(content, bytes):
        return content
    return doc if isinstance(doc, bytes) else None


def _doc_type(doc: Any) -> str | None:
    content_type = _get(doc, "contentType")
    return str(content_type) if content_type else None


def _message_retour(reply: Any) -> tuple[str | None, str | None, str | None]:
    # zeep unwraps a response element whose only child is MessageRetour
    message = reply if _get(reply, "codeRetour") is not None else _get(reply, "MessageRetour")
    if message is None:
        return None, None, None
    code = _get(message, "codeRetour")
    return (
        str(code).strip() if code is not None else None,
        _get(message, "message"),
        _get(message, "severite"),
    )


def _log_entry(item: Any) -> LogEntry:
    timestamp = _get(item, "timestamp")
    return LogEntry(
        timestamp=timestamp if isinstance(timestamp, datetime) else None,
        name=str(_get(item, "nom") or ""),
        status=str(_get(item, "status") or ""),
        annotation=str(_get(item, "annotation") or ""),
    )
