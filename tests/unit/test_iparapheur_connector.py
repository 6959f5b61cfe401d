"""The i-Parapheur connector against ``httpx.MockTransport``, fed real-shaped SOAP answers.

Answer shapes follow i-Parapheur's own SOAP test expectations (megalis-bretagne/parapheur-v5
``src/test/resources/lib/soap/schemas/*Response/*.xml``: JAX-WS ``S:`` envelope, default
namespace, ``xmime`` declared, ``severite`` INFO/ERROR, ``LogDossier`` without
``accessible`` in ``GetHistoDossier``) and the histories of its ``GetHistoDossier``
feature (NonLu → Lu → Signe → Archive; rejections by a viewer or a signer, the actor's
name in ``nom``). The WSDL is the official one, read from ``../shared/reference``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
import pytest
from lxml import etree

from connectors.iparapheur import (
    ActeMetadata,
    Annex,
    CreateOutcome,
    DossierRequest,
    IParapheurConnector,
    SignatureState,
    dossier_id_for,
)
from connectors.iparapheur.ids import DOSSIER_ID_PATTERN
from connectors.iparapheur.models import Rejecter
from relais.errors import (
    PartnerAuthError,
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerReplyTooLargeError,
    PartnerTimeoutError,
    PartnerTransientError,
)

WSDL = (
    Path(__file__).parents[2] / ".." / "shared" / "reference" / "iparapheur"
    / "iparapheur.xml.wsdl"
)
NS = "http://www.adullact.org/spring-ws/iparapheur/1.0"
ENDPOINT = "https://parapheur.example/ws-iparapheur-no-mtom"


def envelope(body: str) -> bytes:
    return (
        '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
        + body
        + "</S:Body></S:Envelope>"
    ).encode()


def response(name: str, inner: str) -> bytes:
    return envelope(
        f'<{name} xmlns="{NS}" xmlns:xmime="http://www.w3.org/2005/05/xmlmime">{inner}</{name}>'
    )


def retour(code: str, message: str, severity: str) -> str:
    return (
        f"<MessageRetour><codeRetour>{code}</codeRetour><message>{message}</message>"
        f"<severite>{severity}</severite></MessageRetour>"
    )


def log(ts: str, nom: str, status: str, annotation: str) -> str:
    return (
        f"<LogDossier><timestamp>{ts}</timestamp><nom>{nom}</nom><status>{status}</status>"
        f"<annotation>{annotation}</annotation></LogDossier>"
    )


def fault(code: str, text: str) -> bytes:
    return envelope(
        f"<S:Fault><faultcode>S:{code}</faultcode><faultstring>{text}</faultstring></S:Fault>"
    )


SOAP = {"content-type": "text/xml;charset=utf-8"}
DOSSIER = dossier_id_for("acte/21350238800015/2026-000123")


def connector(handler: Callable[[httpx.Request], httpx.Response]) -> IParapheurConnector:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return IParapheurConnector(http, endpoint=ENDPOINT, wsdl=WSDL, member="213502388")


def answering(body: bytes, status: int = 200, seen: list[httpx.Request] | None = None
              ) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=body, headers=SOAP)
    return handler


def acte_request(**changes: object) -> DossierRequest:
    fields: dict[str, object] = {
        "dossier_id": DOSSIER,
        "technical_type": "ACTES",
        "sub_type": "Deliberation",
        "document": b"%PDF-1.7 deliberation",
        "document_content_type": "application/pdf",
        "document_name": "deliberation.pdf",
        "deadline": date(2026, 12, 31),
        "annexes": (Annex("annexe_1.pdf", b"%PDF-1.7 annexe"),),
        "acte": ActeMetadata("DE", "1.1", date(2026, 12, 1), "Budget primitif"),
    }
    fields.update(changes)
    return DossierRequest(**fields)  # type: ignore[arg-type]


def body_of(request: httpx.Request) -> etree._Element:
    root = etree.fromstring(request.content)
    element = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]  # type: ignore[index]
    return element


# -- DossierID ------------------------------------------------------------------------


def test_dossier_id_is_stable_distinct_and_inside_the_wsdl_pattern() -> None:
    flow = "acte:21350238800015:2026/000123?%+;"
    assert dossier_id_for(flow) == dossier_id_for(flow)
    assert dossier_id_for(flow) != dossier_id_for(flow.replace("?", "!"))
    assert dossier_id_for(flow) != dossier_id_for(flow, stage="pes")
    for value in (flow, "x" * 2000, "é:ü", DOSSIER):
        dossier_id = dossier_id_for(value) if value != DOSSIER else value
        assert DOSSIER_ID_PATTERN.match(dossier_id), dossier_id
        assert not re.search(r'[\\&"£*/<>?%|+;:]', dossier_id)
        assert len(dossier_id) <= 601


# -- CreerDossier ---------------------------------------------------------------------


async def test_create_sends_document_annexes_acte_metadata_and_reads_ok() -> None:
    seen: list[httpx.Request] = []
    ok = response("CreerDossierResponse", retour("OK", "Dossier déposé pour signature", "INFO"))
    result = await connector(answering(ok, seen=seen)).create_dossier(acte_request())
    assert result is CreateOutcome.CREATED
    sent = body_of(seen[0])
    assert sent.tag == f"{{{NS}}}CreerDossierRequest"
    assert seen[0].headers["SOAPAction"] == '""'
    assert sent.findtext(f"{{{NS}}}DossierID") == DOSSIER
    principal = sent.find(f"{{{NS}}}DocumentPrincipal")
    assert principal is not None
    assert base64.b64decode(principal.text or "") == b"%PDF-1.7 deliberation"
    assert principal.get("{http://www.w3.org/2005/05/xmlmime}contentType") == "application/pdf"
    assert sent.findtext(f"{{{NS}}}MetaDataTdtACTES/{{{NS}}}classification") == "1.1"
    assert sent.findtext(f"{{{NS}}}DateLimite") == "2026-12-31"
    assert sent.findtext(f"{{{NS}}}DocumentsAnnexes/{{{NS}}}DocAnnexe/{{{NS}}}nom") == (
        "annexe_1.pdf"
    )


async def test_create_for_a_pes_sends_the_xpath() -> None:
    seen: list[httpx.Request] = []
    ok = response("CreerDossierResponse", retour("OK", "", "INFO"))
    request = acte_request(
        acte=None, document=b"<PES_Aller/>", document_content_type="application/xml",
        xpath_for_xml_signature="//Bordereau", annexes=(),
    )
    assert await connector(answering(ok, seen=seen)).create_dossier(request) is (
        CreateOutcome.CREATED
    )
    assert body_of(seen[0]).findtext(f"{{{NS}}}XPathPourSignatureXML") == "//Bordereau"


async def test_a_retried_create_is_read_as_already_existing() -> None:
    duplicate = response("CreerDossierResponse", retour(
        "KO", f"Le nom de dossier est déjà présent dans le Parapheur: dossierID = {DOSSIER}",
        "ERROR"))
    assert await connector(answering(duplicate)).create_dossier(acte_request()) is (
        CreateOutcome.ALREADY_EXISTS
    )


async def test_a_business_refusal_carries_i_parapheur_words() -> None:
    ko = response("CreerDossierResponse", retour("KO", "Type ACTES inconnu", "ERROR"))
    with pytest.raises(PartnerRefusedError) as caught:
        await connector(answering(ko)).create_dossier(acte_request())
    assert caught.value.message == "[ERROR] Type ACTES inconnu"
    assert not caught.value.retriable
    assert caught.value.partner == "iparapheur"


async def test_a_request_outside_the_contract_is_refused_before_sending() -> None:
    seen: list[httpx.Request] = []
    ok = response("CreerDossierResponse", retour("OK", "", "INFO"))
    with pytest.raises(PartnerPermanentError):
        await connector(answering(ok, seen=seen))._call("CreerDossier", 1000, Bogus="x")
    assert seen == []


# -- GetHistoDossier ------------------------------------------------------------------

START = (
    log("2026-12-04T10:00:00.000+01:00", "Service Web", "NonLu", "Création de dossier")
    + log("2026-12-04T10:00:01.000+01:00", "Service Web", "NonLu",
          f"Annotation publique ws@relais (démarrage du dossier {DOSSIER})")
    + log("2026-12-04T10:00:02.000+01:00", "Service Web", "NonLu",
          "Dossier déposé sur le bureau Maire pour signature")
)


async def test_history_ending_in_archive_is_finished_with_its_signature_date() -> None:
    body = response("GetHistoDossierResponse", START
                    + log("2026-12-04T11:00:00.000+01:00", "Anne Maire", "Lu",
                          "Dossier lu et prêt pour la signature")
                    + log("2026-12-04T11:05:00.000+01:00", "Anne Maire", "Signe", "")
                    + log("2026-12-04T11:05:01.000+01:00", "Anne Maire", "Archive",
                          "Circuit terminé, dossier archivable"))
    status = await connector(answering(body)).get_status(DOSSIER)
    assert status.state is SignatureState.FINISHED
    assert status.status == "Archive"
    assert status.signed_at is not None and status.signed_at.hour == 11
    assert len(status.history) == 6


@pytest.mark.parametrize(
    ("status_text", "rejecter"),
    [("RejetSignataire", Rejecter.SIGNER), ("RejetVisa", Rejecter.VIEWER),
     ("RejetCachet", Rejecter.SEAL)],
)
async def test_rejection_carries_the_annotation_and_who(status_text: str,
                                                        rejecter: Rejecter) -> None:
    body = response("GetHistoDossierResponse", START
                    + log("2026-12-04T11:00:00.000+01:00", "Anne Maire", "Lu",
                          "Dossier lu et prêt pour la signature")
                    + log("2026-12-04T11:02:00.000+01:00", "Anne Maire", status_text,
                          "Annotation publique amaire@ville (montant erroné)"))
    status = await connector(answering(body)).get_status(DOSSIER)
    assert status.state is SignatureState.REJECTED
    assert status.rejected_by is rejecter
    assert status.actor == "Anne Maire"
    assert status.annotation == "Annotation publique amaire@ville (montant erroné)"


async def test_a_dossier_waiting_for_its_signer_is_in_progress() -> None:
    body = response("GetHistoDossierResponse", START + retour("OK", "", "INFO"))
    status = await connector(answering(body)).get_status(DOSSIER)
    assert status.state is SignatureState.IN_PROGRESS
    assert status.status == "NonLu"


async def test_no_history_means_not_found() -> None:
    body = response("GetHistoDossierResponse", retour("KO", "Dossier inconnu", "ERROR"))
    status = await connector(answering(body)).get_status(DOSSIER)
    assert status.state is SignatureState.NOT_FOUND


# -- GetDossier, ArchiverDossier, EffacerDossierRejete, RechercherDossiers --------------


SIGNATURE = bytes([0x30, 0x82, 0x01, 0x0A]) + b"pkcs7"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_get_signed_returns_the_detached_signature_and_the_last_annex_as_bordereau() -> None:
    body = response("GetDossierResponse", (
        f"<TypeTechnique>ACTES</TypeTechnique><SousType>Deliberation</SousType>"
        f"<DossierID>{DOSSIER}</DossierID><AnnotationPublique/><AnnotationPrivee/>"
        f"<Visibilite>SERVICE</Visibilite><DateLimite>2026-12-31</DateLimite>"
        f'<DocPrincipal xmime:contentType="application/pdf">{_b64(b"%PDF doc")}</DocPrincipal>'
        f"<NomDocPrincipal>deliberation.pdf</NomDocPrincipal>"
        f'<SignatureDocPrincipal xmime:contentType="application/x-pkcs7-signature">'
        f"{_b64(SIGNATURE)}</SignatureDocPrincipal>"
        f"<DocumentsAnnexes>"
        f'<DocAnnexe><nom>annexe_1.pdf</nom><fichier xmime:contentType="application/pdf">'
        f"{_b64(b'annex')}</fichier><mimetype>application/pdf</mimetype>"
        f"<encoding>UTF-8</encoding></DocAnnexe>"
        f'<DocAnnexe><nom>"bordereau.pdf"</nom><fichier xmime:contentType="application/pdf">'
        f"{_b64(b'bordereau')}</fichier><mimetype>application/pdf</mimetype>"
        f"<encoding>UTF-8</encoding></DocAnnexe></DocumentsAnnexes>"
        + retour("OK", "", "INFO")
    ))
    signed = await connector(answering(body)).get_signed(DOSSIER)
    assert signed.signature == SIGNATURE
    assert signed.signature_content_type == "application/x-pkcs7-signature"
    assert signed.signed_file == b"%PDF doc"
    assert not signed.is_xml
    assert signed.bordereau == b"bordereau"
    assert signed.bordereau_name == "bordereau.pdf"


async def test_get_signed_for_a_pes_returns_the_signed_xml() -> None:
    pes = b"<PES_Aller><ds:Signature xmlns:ds='http://www.w3.org/2000/09/xmldsig#'/></PES_Aller>"
    body = response("GetDossierResponse", (
        f"<TypeTechnique>PES</TypeTechnique><SousType>Bordereau</SousType>"
        f"<DossierID>{DOSSIER}</DossierID>"
        f'<FichierPES xmime:contentType="text/xml">{_b64(pes)}</FichierPES>'
        f"<Visibilite>SERVICE</Visibilite><DateLimite/>" + retour("OK", "", "INFO")
    ))
    signed = await connector(answering(body)).get_signed(DOSSIER)
    assert signed.is_xml and signed.signed_file == pes and signed.signature is None


async def test_get_signed_ko_is_a_refusal() -> None:
    body = response("GetDossierResponse", (
        f"<TypeTechnique>ACTES</TypeTechnique><SousType>Deliberation</SousType>"
        f"<DossierID>{DOSSIER}</DossierID><Visibilite>SERVICE</Visibilite><DateLimite/>"
        + retour("KO", "Dossier non terminé", "ERROR")))
    with pytest.raises(PartnerRefusedError, match="Dossier non terminé"):
        await connector(answering(body)).get_signed(DOSSIER)


async def test_archive_sends_effacer_and_reads_ok_or_ko() -> None:
    seen: list[httpx.Request] = []
    ok = response("ArchiverDossierResponse", "<URL/>" + retour("OK", "Dossier archivé", "INFO"))
    assert await connector(answering(ok, seen=seen)).archive(DOSSIER) is None
    assert body_of(seen[0]).findtext(f"{{{NS}}}ArchivageAction") == "EFFACER"
    ko = response("ArchiverDossierResponse", retour("KO", "Dossier en cours", "ERROR"))
    with pytest.raises(PartnerRefusedError):
        await connector(answering(ko)).archive(DOSSIER)


async def test_delete_rejected() -> None:
    seen: list[httpx.Request] = []
    ok = response("EffacerDossierRejeteResponse", retour("OK", "", "INFO"))
    await connector(answering(ok, seen=seen)).delete_rejected(DOSSIER)
    assert body_of(seen[0]).text == DOSSIER


async def test_reconcile_creates_only_when_the_search_does_not_find_the_dossier() -> None:
    calls: list[str] = []
    found = response("RechercherDossiersResponse", (
        f"<LogDossier><timestamp>2026-12-04T10:00:00+01:00</timestamp><nom>{DOSSIER}</nom>"
        f"<status>NonLu</status><annotation/><accessible>OK</accessible></LogDossier>"))

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(body_of(request).tag.split("}")[1])
        return httpx.Response(200, content=found, headers=SOAP)

    assert await connector(handler).reconcile_create(acte_request()) is (
        CreateOutcome.ALREADY_EXISTS
    )
    assert calls == ["RechercherDossiersRequest"]

    empty = response("RechercherDossiersResponse", "")
    created = response("CreerDossierResponse", retour("OK", "", "INFO"))
    calls.clear()

    def handler2(request: httpx.Request) -> httpx.Response:
        name = body_of(request).tag.split("}")[1]
        calls.append(name)
        return httpx.Response(200, content=empty if name.startswith("Rech") else created,
                              headers=SOAP)

    assert await connector(handler2).reconcile_create(acte_request()) is CreateOutcome.CREATED
    assert calls == ["RechercherDossiersRequest", "CreerDossierRequest"]


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (fault("Server", "Alfresco repository unavailable"), 500, PartnerTransientError),
        (fault("Client", "Unmarshalling Error: unexpected element"), 500, PartnerPermanentError),
        (fault("Client", "Access denied"), 500, PartnerAuthError),
        (b"<html><body>503 Service Unavailable</body></html>", 503, PartnerTransientError),
        (b"", 502, PartnerTransientError),
        (b"<html>Unauthorized</html>", 401, PartnerAuthError),
        (b"<html>Not found</html>", 404, PartnerPermanentError),
        (b"this is not xml", 200, PartnerReplyError),
    ],
)
async def test_failures_are_translated(body: bytes, status: int,
                                       expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        await connector(answering(body, status)).get_status(DOSSIER)
    assert type(caught.value) is expected
    assert "httpx" not in caught.value.args[0]


async def test_timeout_is_retriable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(PartnerTimeoutError) as caught:
        await connector(handler).create_dossier(acte_request())
    assert caught.value.retriable


async def test_a_reply_over_its_cap_is_not_read_whole() -> None:
    big = response("GetHistoDossierResponse", log(
        "2026-12-04T10:00:00+01:00", "Service Web", "NonLu", "x" * 3_000_000))
    with pytest.raises(PartnerReplyTooLargeError):
        await connector(answering(big)).get_status(DOSSIER)
