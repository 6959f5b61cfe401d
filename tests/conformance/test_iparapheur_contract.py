"""The i-Parapheur connector and the sandbox i-Parapheur both honour the official contract.

zeep loads the **official** WSDL (``../shared/reference/iparapheur/iparapheur.xml.wsdl``,
never copied) and drives the sandbox through every operation Relais uses. Every request
Relais sends is captured and its body element validated with lxml against the schema
extracted from that WSDL at test time (the ``xmlmime`` import resolved to the W3C
declarations the connector holds). The sandbox's answers are validated too; the only
errors allowed are the two ways real i-Parapheur itself departs from its WSDL (i-Parapheur
5's SOAP tests): a ``GetHistoDossier`` ``LogDossier`` without ``accessible``, and a
``LogDossier/nom`` holding an actor's name ("Service Web", "Anne Maire") that the
``DossierID`` pattern does not allow.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import pkcs7
from lxml import etree

from connectors.iparapheur import (
    ActeMetadata,
    Annex,
    CreateOutcome,
    DossierRequest,
    IParapheurConnector,
    SignatureState,
    dossier_id_for,
    load_wsdl,
)
from connectors.iparapheur.models import Rejecter
from connectors.iparapheur.wsdl import XMLMIME_NAMESPACE, XMLMIME_SCHEMA
from relais.errors import PartnerTimeoutError, PartnerTransientError
from sandbox.common.server import running_sandbox
from sandbox.iparapheur.app import create_iparapheur_sandbox
from sandbox.iparapheur.config import IparapheurConfig, SignerBehaviour
from sandbox.iparapheur.partner import build

WSDL = (
    Path(__file__).parents[2] / ".." / "shared" / "reference" / "iparapheur"
    / "iparapheur.xml.wsdl"
)
NS = "http://www.adullact.org/spring-ws/iparapheur/1.0"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ACCOUNT = ("ws-relais", "ws-relais")


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """The XML schema inside the official WSDL's ``wsdl:types``, its ``xmlmime`` import
    pointed at a file holding the W3C declarations (no network)."""
    xmlmime = tmp_path_factory.mktemp("xmlmime") / "xmlmime.xsd"
    xmlmime.write_bytes(XMLMIME_SCHEMA)
    wsdl = etree.parse(str(WSDL))
    node = wsdl.find(
        "{http://schemas.xmlsoap.org/wsdl/}types/{http://www.w3.org/2001/XMLSchema}schema"
    )
    assert node is not None
    document = etree.fromstring(etree.tostring(node))
    for imported in document.iterfind("{http://www.w3.org/2001/XMLSchema}import"):
        if imported.get("namespace") == XMLMIME_NAMESPACE:
            imported.set("schemaLocation", xmlmime.as_uri())
    return etree.XMLSchema(document)


@dataclass
class Exchanges:
    requests: list[bytes] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)


def body_element(envelope: bytes) -> etree._Element:
    root = etree.fromstring(envelope)
    assert root.tag == f"{{{ENV}}}Envelope"
    body = root.find(f"{{{ENV}}}Body")
    assert body is not None and len(body) == 1
    return etree.fromstring(etree.tostring(body[0]))


REAL_DEVIATIONS = (
    re.compile(r"Element '\{" + re.escape(NS) + r"\}nom': \[facet 'pattern'\]"),
    re.compile(r"Element '\{" + re.escape(NS) + r"\}nom': '.*' is not a valid value"),
    re.compile(r"Missing child element\(s\)\. Expected is \( \{" + re.escape(NS)
               + r"\}accessible \)"),
)


def schema_errors(schema: etree.XMLSchema, element: etree._Element) -> list[str]:
    schema.validate(element)
    errors: Iterable[Any] = schema.error_log  # type: ignore[assignment]  # iterable at runtime
    return [error.message for error in errors]


def recording(app: object, exchanges: Exchanges) -> httpx.AsyncBaseTransport:
    inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            exchanges.requests.append(request.content)
            response = await inner.handle_async_request(request)
            content = await response.aread()
            if request.url.path.startswith("/ws-iparapheur"):
                exchanges.responses.append(content)
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=content)

    return Recording()


@pytest.fixture
async def world() -> AsyncIterator[tuple[IParapheurConnector, httpx.AsyncClient, Exchanges]]:
    exchanges = Exchanges()
    app = create_iparapheur_sandbox(IparapheurConfig(behaviour=SignerBehaviour(
        visa_seconds=5, sign_seconds=5, rejection_annotation="Montant erroné en page 2")))
    http = httpx.AsyncClient(transport=recording(app, exchanges), auth=ACCOUNT,
                             base_url="http://sandbox")
    connector = IParapheurConnector(http, endpoint="http://sandbox/ws-iparapheur-no-mtom",
                                    wsdl=WSDL, member="213502388")
    yield connector, http, exchanges
    await connector.aclose()
    await http.aclose()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PES = (b"<?xml version='1.0' encoding='ISO-8859-1'?><PES_Aller Id='p1'><EnTetePES/>"
       b"<PES_DepenseAller><Bordereau Id='b1'/></PES_DepenseAller></PES_Aller>")


def acte(flow: str) -> DossierRequest:
    return DossierRequest(
        dossier_id=dossier_id_for(flow),
        technical_type="ACTES",
        sub_type="Deliberation",
        document=PDF,
        document_content_type="application/pdf",
        document_name="deliberation.pdf",
        deadline=date(2026, 12, 31),
        annexes=(Annex("annexe_1.pdf", PDF), Annex("plan.png", b"\x89PNG", "image/png")),
        acte=ActeMetadata("DE", "7.1", date(2026, 12, 1), "Budget primitif 2027"),
        public_annotation="Merci de signer avant le conseil",
        metadata={"numero": "2026-123"},
    )


async def advance(http: httpx.AsyncClient, seconds: float) -> None:
    reply = await http.post("/sandbox/clock", json={"advance_seconds": seconds})
    assert reply.status_code == 200


async def test_every_operation_relais_uses_through_the_official_wsdl(
    world: tuple[IParapheurConnector, httpx.AsyncClient, Exchanges], schema: etree.XMLSchema
) -> None:
    connector, http, exchanges = world
    signed, rejected = acte("acte/1/signed"), acte("acte/1/rejected")
    pes = DossierRequest(
        dossier_id=dossier_id_for("pes/1"), technical_type="PES", sub_type="Bordereau",
        document=PES, document_content_type="application/xml",
        xpath_for_xml_signature="//Bordereau", visual_pdf=PDF,
    )
    await http.post("/sandbox/fates", json={rejected.dossier_id: "reject_signer"})

    assert await connector.create_dossier(signed) is CreateOutcome.CREATED
    assert await connector.create_dossier(signed) is CreateOutcome.ALREADY_EXISTS
    assert await connector.create_dossier(rejected) is CreateOutcome.CREATED
    assert await connector.create_dossier(pes) is CreateOutcome.CREATED
    assert (await connector.get_status(signed.dossier_id)).state is SignatureState.IN_PROGRESS
    found = await connector.find_dossiers([signed.dossier_id, dossier_id_for("never-sent")])
    assert set(found) == {signed.dossier_id}

    await advance(http, 11)
    status = await connector.get_status(signed.dossier_id)
    assert status.state is SignatureState.FINISHED and status.signed_at is not None
    refusal = await connector.get_status(rejected.dossier_id)
    assert refusal.state is SignatureState.REJECTED
    assert refusal.rejected_by is Rejecter.SIGNER
    assert refusal.annotation == "Montant erroné en page 2" and refusal.actor == "Anne Maire"

    result = await connector.get_signed(signed.dossier_id)
    assert result.signature is not None and not result.is_xml
    assert pkcs7.load_der_pkcs7_certificates(result.signature)  # a real CMS SignedData
    assert result.signed_file == PDF
    assert result.bordereau is not None and result.bordereau.startswith(b"%PDF")
    pes_result = await connector.get_signed(pes.dossier_id)
    assert pes_result.is_xml and pes_result.signed_file is not None
    assert b"Signature" in pes_result.signed_file

    assert await connector.archive(signed.dossier_id) is None
    assert await connector.archive(pes.dossier_id) is None
    await connector.delete_rejected(rejected.dossier_id)
    for dossier in (signed, rejected, pes):
        assert (await connector.get_status(dossier.dossier_id)).state is (
            SignatureState.NOT_FOUND
        )

    operations = {body_element(r).tag.split("}")[1] for r in exchanges.requests
                  if r.startswith(b"<?xml")}
    assert operations == {
        "CreerDossierRequest", "GetHistoDossierRequest", "GetDossierRequest",
        "ArchiverDossierRequest", "EffacerDossierRejeteRequest", "RechercherDossiersRequest",
    }
    for request in exchanges.requests:
        if request.startswith(b"<?xml"):
            element = body_element(request)
            assert schema_errors(schema, element) == [], element.tag
    allowed_seen: list[str] = []
    for answer in exchanges.responses:
        element = body_element(answer)
        assert element.nsmap.get(None) == NS  # i-Parapheur's default namespace
        errors = schema_errors(schema, element)
        allowed_seen.extend(errors)
        unexpected = [e for e in errors
                      if not any(p.search(e) for p in REAL_DEVIATIONS)]
        assert unexpected == [], element.tag
    # the sandbox does reproduce real i-Parapheur's departures (not a vacuous filter)
    assert any("accessible" in e for e in allowed_seen)
    assert any("}nom'" in e for e in allowed_seen)


async def test_the_schema_check_catches_a_request_outside_the_contract(
    schema: etree.XMLSchema,
) -> None:
    wrong = etree.fromstring(
        f'<CreerDossierRequest xmlns="{NS}"><TypeTechnique>ACTES</TypeTechnique>'
        "<DossierID>bad/id</DossierID></CreerDossierRequest>".encode())
    assert schema_errors(schema, wrong)


async def test_a_create_lost_after_commit_is_reconciled_without_a_second_dossier(
    world: tuple[IParapheurConnector, httpx.AsyncClient, Exchanges],
) -> None:
    connector, http, _ = world
    request = acte("acte/2")
    await http.post("/sandbox/faults", json={"error_after_commit_rate": 1.0})
    with pytest.raises(PartnerTransientError):
        await connector.create_dossier(request)
    await http.post("/sandbox/faults", json={"error_after_commit_rate": 0.0})
    assert await connector.reconcile_create(request) is CreateOutcome.ALREADY_EXISTS
    assert await connector.create_dossier(request) is CreateOutcome.ALREADY_EXISTS
    assert len((await http.get("/sandbox/dossiers")).json()) == 1

    await http.post("/sandbox/faults", json={"soap_fault_rate": 1.0})
    with pytest.raises(PartnerTransientError, match="Server"):
        await connector.get_status(request.dossier_id)


async def test_a_create_timing_out_after_creating_on_a_real_socket() -> None:
    sandbox = build(None)
    async with running_sandbox(sandbox.app) as running:
        http = httpx.AsyncClient(auth=ACCOUNT, timeout=1.0)
        connector = IParapheurConnector(
            http, endpoint=f"{running.url}/ws-iparapheur", wsdl=load_wsdl(WSDL))
        await http.post(f"{running.url}/sandbox/faults",
                        json={"timeout_rate": 1.0, "hang_seconds": 3})
        request = acte("acte/3")
        with pytest.raises(PartnerTimeoutError):
            await connector.create_dossier(request)
        await http.post(f"{running.url}/sandbox/faults", json={"timeout_rate": 0.0})
        assert await connector.reconcile_create(request) is CreateOutcome.ALREADY_EXISTS
        listing = (await http.get(f"{running.url}/sandbox/dossiers")).json()
        assert [row["dossier_id"] for row in listing] == [request.dossier_id]
        await connector.aclose()
        await http.aclose()
