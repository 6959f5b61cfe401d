"""The sandbox i-Parapheur on its own: raw SOAP in, i-Parapheur-shaped SOAP out.

Driven in process (``httpx.ASGITransport``) on an adjustable clock; requests are written
by hand here (the connector is tested against the sandbox in the conformance tier).
"""

from __future__ import annotations

import base64
from collections import Counter

import httpx
import pytest
from lxml import etree

from sandbox.common.clock import AdjustableClock
from sandbox.iparapheur.app import create_iparapheur_sandbox
from sandbox.iparapheur.config import IparapheurConfig, IparapheurFaults, SignerBehaviour

NS = "http://www.adullact.org/spring-ws/iparapheur/1.0"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
URL = "http://sandbox/ws-iparapheur-no-mtom"


def soap(inner: str) -> bytes:
    return (
        f'<soap-env:Envelope xmlns:soap-env="{ENV}"><soap-env:Body>{inner}'
        "</soap-env:Body></soap-env:Envelope>"
    ).encode()


def creer(dossier_id: str, *, pdf: bytes = b"%PDF-1.4 acte") -> bytes:
    b64 = base64.b64encode(pdf).decode()
    return soap(
        f'<ns0:CreerDossierRequest xmlns:ns0="{NS}" '
        'xmlns:xmime="http://www.w3.org/2005/05/xmlmime">'
        "<ns0:TypeTechnique>ACTES</ns0:TypeTechnique><ns0:SousType>Deliberation</ns0:SousType>"
        f"<ns0:DossierID>{dossier_id}</ns0:DossierID>"
        f'<ns0:DocumentPrincipal xmime:contentType="application/pdf">{b64}'
        "</ns0:DocumentPrincipal><ns0:Visibilite>SERVICE</ns0:Visibilite>"
        "</ns0:CreerDossierRequest>"
    )


def by_id(operation: str, dossier_id: str) -> bytes:
    return soap(f'<ns0:{operation}Request xmlns:ns0="{NS}">{dossier_id}</ns0:{operation}Request>')


def archiver(dossier_id: str) -> bytes:
    return soap(
        f'<ns0:ArchiverDossierRequest xmlns:ns0="{NS}"><ns0:DossierID>{dossier_id}'
        "</ns0:DossierID><ns0:ArchivageAction>EFFACER</ns0:ArchivageAction>"
        "</ns0:ArchiverDossierRequest>"
    )


class Sandbox:
    def __init__(self, config: IparapheurConfig) -> None:
        self.clock = AdjustableClock()
        self.slept: list[float] = []

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        self.app = create_iparapheur_sandbox(config, clock=self.clock, sleep=sleep)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), auth=("ws-relais", "ws-relais")
        )

    async def post(self, body: bytes) -> httpx.Response:
        return await self.http.post(URL, content=body, headers={"SOAPAction": '""'})

    async def call(self, body: bytes) -> etree._Element:
        reply = await self.post(body)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/xml")
        return etree.fromstring(reply.content).find(f"{{{ENV}}}Body")[0]  # type: ignore[index]

    async def statuses(self, dossier_id: str) -> list[tuple[str, str, str]]:
        answer = await self.call(by_id("GetHistoDossier", dossier_id))
        return [
            (e.findtext(f"{{{NS}}}nom") or "", e.findtext(f"{{{NS}}}status") or "",
             e.findtext(f"{{{NS}}}annotation") or "")
            for e in answer.iterfind(f"{{{NS}}}LogDossier")
        ]


def code(answer: etree._Element) -> tuple[str | None, str | None, str | None]:
    retour = answer.find(f"{{{NS}}}MessageRetour")
    assert retour is not None
    return (retour.findtext(f"{{{NS}}}codeRetour"), retour.findtext(f"{{{NS}}}message"),
            retour.findtext(f"{{{NS}}}severite"))


def config(**behaviour: object) -> IparapheurConfig:
    return IparapheurConfig(behaviour=SignerBehaviour(visa_seconds=10, sign_seconds=10,
                                                      **behaviour))  # type: ignore[arg-type]


async def test_create_answers_ok_then_refuses_the_same_dossier_id() -> None:
    sandbox = Sandbox(config())
    answer = await sandbox.call(creer("D-1"))
    assert answer.tag == f"{{{NS}}}CreerDossierResponse"
    assert code(answer)[0] == "OK" and code(answer)[2] == "INFO"
    again = code(await sandbox.call(creer("D-1")))
    assert again == ("KO", "Le nom de dossier est déjà présent dans le Parapheur: "
                     "dossierID = D-1", "ERROR")
    stats = (await sandbox.http.get("http://sandbox/sandbox/stats")).json()
    assert stats["dossiers"] == 1 and stats["duplicates_refused"] == 1


async def test_a_signed_dossier_walks_the_circuit_and_ends_in_archive() -> None:
    sandbox = Sandbox(config())
    await sandbox.call(creer("D-2"))
    assert [s for _, s, _ in await sandbox.statuses("D-2")] == ["NonLu", "NonLu", "EnCoursVisa"]
    sandbox.clock.advance(10)
    assert (await sandbox.statuses("D-2"))[-1][1] == "NonLu"
    sandbox.clock.advance(10)
    history = await sandbox.statuses("D-2")
    assert [s for _, s, _ in history] == [
        "NonLu", "NonLu", "EnCoursVisa", "Vise", "NonLu", "Lu", "Signe", "Archive"]
    assert history[-1] == ("Anne Maire", "Archive", "Circuit terminé, dossier archivable")
    dossier = await sandbox.call(by_id("GetDossier", "D-2"))
    signature = dossier.find(f"{{{NS}}}SignatureDocPrincipal")
    assert signature is not None
    assert signature.get("{http://www.w3.org/2005/05/xmlmime}contentType") == (
        "application/x-pkcs7-signature"
    )
    assert base64.b64decode(signature.text or "")[:1] == b"\x30"  # DER SEQUENCE
    annexes = dossier.findall(f"{{{NS}}}DocumentsAnnexes/{{{NS}}}DocAnnexe")
    assert annexes[-1].findtext(f"{{{NS}}}nom") == "D-2-bordereau.pdf"
    assert code(await sandbox.call(archiver("D-2")))[0] == "OK"
    assert code(await sandbox.call(by_id("GetHistoDossier", "D-2")))[0] == "KO"


@pytest.mark.parametrize(
    ("fate", "status", "actor"),
    [("reject_viewer", "RejetVisa", "Paul Secrétaire"),
     ("reject_signer", "RejetSignataire", "Anne Maire")],
)
async def test_rejections_carry_the_annotation_and_the_actor(fate: str, status: str,
                                                             actor: str) -> None:
    sandbox = Sandbox(config(rejection_annotation="Montant erroné"))
    await sandbox.http.post("http://sandbox/sandbox/fates", json={"D-3": fate})
    await sandbox.call(creer("D-3"))
    sandbox.clock.advance(25)
    assert (await sandbox.statuses("D-3"))[-1] == (actor, status, "Montant erroné")
    assert code(await sandbox.call(archiver("D-3")))[0] == "KO"
    assert code(await sandbox.call(by_id("EffacerDossierRejete", "D-3")))[0] == "OK"
    assert code(await sandbox.call(by_id("GetHistoDossier", "D-3")))[0] == "KO"


async def test_never_and_slow_fates() -> None:
    sandbox = Sandbox(config(slow_seconds=1000))
    await sandbox.http.post("http://sandbox/sandbox/fates", json={"N": "never", "S": "slow"})
    await sandbox.call(creer("N"))
    await sandbox.call(creer("S"))
    sandbox.clock.advance(100)
    assert (await sandbox.statuses("N"))[-1][1] == "NonLu"
    assert (await sandbox.statuses("S"))[-1][1] == "EnCoursVisa"
    assert code(await sandbox.call(by_id("EffacerDossierRejete", "N")))[0] == "KO"
    sandbox.clock.advance(2000)
    assert (await sandbox.statuses("S"))[-1][1] == "Archive"
    assert (await sandbox.statuses("N"))[-1][1] == "NonLu"


async def test_rates_follow_the_seed() -> None:
    async def outcomes(seed: int) -> Counter[str]:
        sandbox = Sandbox(IparapheurConfig(seed=seed, behaviour=SignerBehaviour(
            visa_seconds=1, sign_seconds=1, reject_viewer_rate=0.1, reject_signer_rate=0.15,
            never_rate=0.1)))
        for i in range(200):
            await sandbox.call(creer(f"R-{i}"))
        sandbox.clock.advance(5)
        listing = (await sandbox.http.get("http://sandbox/sandbox/dossiers")).json()
        return Counter(row["status"] for row in listing)

    first = await outcomes(7)
    assert first == await outcomes(7)
    assert first != await outcomes(8)
    assert 5 <= first["RejetVisa"] <= 40 and 10 <= first["RejetSignataire"] <= 50
    assert 90 <= first["Archive"] <= 160
    assert sum(first.values()) == 200


async def test_search_lists_dossiers_by_id_with_their_last_status() -> None:
    sandbox = Sandbox(config())
    await sandbox.call(creer("A-1"))
    answer = await sandbox.call(soap(
        f'<ns0:RechercherDossiersRequest xmlns:ns0="{NS}"><ns0:DossierID>A-1</ns0:DossierID>'
        "<ns0:DossierID>absent</ns0:DossierID></ns0:RechercherDossiersRequest>"))
    rows = answer.findall(f"{{{NS}}}LogDossier")
    assert [(r.findtext(f"{{{NS}}}nom"), r.findtext(f"{{{NS}}}status"),
             r.findtext(f"{{{NS}}}accessible")) for r in rows] == [("A-1", "EnCoursVisa", "OK")]


async def test_soap_fault_transport_error_and_error_after_commit() -> None:
    sandbox = Sandbox(IparapheurConfig(faults=IparapheurFaults(soap_fault_rate=1.0)))
    reply = await sandbox.post(creer("F-1"))
    assert reply.status_code == 500
    assert etree.fromstring(reply.content).findtext(f".//{{{ENV}}}Fault/faultcode") == "S:Server"
    assert (await sandbox.http.get("http://sandbox/sandbox/dossiers")).json() == []

    sandbox = Sandbox(IparapheurConfig(faults=IparapheurFaults(error_rate=1.0)))
    assert (await sandbox.post(creer("F-2"))).status_code == 503

    sandbox = Sandbox(IparapheurConfig(faults=IparapheurFaults(error_after_commit_rate=1.0)))
    assert (await sandbox.post(creer("F-3"))).status_code == 503
    assert [r["dossier_id"] for r in
            (await sandbox.http.get("http://sandbox/sandbox/dossiers")).json()] == ["F-3"]
    assert (await sandbox.post(by_id("GetHistoDossier", "F-3"))).status_code == 200

    sandbox = Sandbox(IparapheurConfig(faults=IparapheurFaults(timeout_rate=1.0,
                                                               hang_seconds=99)))
    assert (await sandbox.post(creer("F-4"))).status_code == 200
    assert sandbox.slept == [99]


async def test_refusals_of_the_transport_and_of_the_envelope() -> None:
    sandbox = Sandbox(IparapheurConfig(max_request_bytes=10_000))
    anonymous = await sandbox.http.post(URL, content=creer("X"), auth=("ws-relais", "wrong"))
    assert anonymous.status_code == 401
    unknown = await sandbox.post(soap(f'<ns0:EnvoyerDossierTdTRequest xmlns:ns0="{NS}">X'
                                      "</ns0:EnvoyerDossierTdTRequest>"))
    assert unknown.status_code == 500 and b"S:Client" in unknown.content
    doctype = await sandbox.post(b'<!DOCTYPE x [<!ENTITY e "e">]>' + creer("X"))
    assert doctype.status_code == 500 and b"S:Client" in doctype.content
    assert (await sandbox.post(b"not xml")).status_code == 500
    assert (await sandbox.post(creer("X", pdf=b"x" * 20_000))).status_code == 413
    invalid = code(await sandbox.call(creer("bad/id")))
    assert invalid[0] == "KO"
