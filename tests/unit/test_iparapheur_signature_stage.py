"""The signature stage's core (``agents/signature``) on the connector and the sandbox
i-Parapheur, with a real blob store: what each history means for the flow, and the order
fetch → store → journal → archive that loses no signature when a worker dies."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from agents.signature.collect import (
    StoredSignature,
    archive_recorded,
    close_rejected,
    collect_signature,
)
from agents.signature.decisions import Fetch, Missing, Rejected, Wait, decide
from agents.signature.requests import acte_dossier, pes_dossier
from agents.signature.settings import SignatureSettings
from connectors.iparapheur import IParapheurConnector
from relais.blobs.filesystem import FilesystemBlobStore
from relais.errors import ConfigurationError
from sandbox.common.clock import AdjustableClock
from sandbox.iparapheur.app import create_iparapheur_sandbox
from sandbox.iparapheur.config import IparapheurConfig, SignerBehaviour

WSDL = (
    Path(__file__).parents[2] / ".." / "shared" / "reference" / "iparapheur"
    / "iparapheur.xml.wsdl"
)
PDF = b"%PDF-1.4\n% acte\n%%EOF\n"
TODAY = date(2026, 12, 4)
SETTINGS = SignatureSettings(technical_type="ACTES", sub_type="Deliberation", deadline_days=10)
SIREN = "213502388"


@dataclass
class World:
    connector: IParapheurConnector
    clock: AdjustableClock
    http: httpx.AsyncClient
    blobs: FilesystemBlobStore


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = AdjustableClock()
    app = create_iparapheur_sandbox(IparapheurConfig(behaviour=SignerBehaviour(
        visa_seconds=1, sign_seconds=1, rejection_annotation="Délibération incomplète")),
        clock=clock)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), auth=("ws-relais",
                             "ws-relais"), base_url="http://sandbox")
    connector = IParapheurConnector(http, endpoint="http://sandbox/ws-iparapheur",
                                    wsdl=WSDL, member=SIREN)
    yield World(connector, clock, http, FilesystemBlobStore(tmp_path / "blobs"))
    await connector.aclose()
    await http.aclose()


async def test_a_signed_acte_is_stored_and_journalled_before_it_is_archived(
    world: World,
) -> None:
    request = acte_dossier("acte/A", SETTINGS, document=PDF, document_name="d.pdf",
                           annexes=(), nature="DE", classification="7.1",
                           decision_date=TODAY, subject="Budget", today=TODAY)
    assert request.deadline == TODAY + timedelta(days=10)
    await world.connector.create_dossier(request)
    status = await world.connector.get_status(request.dossier_id)
    assert decide(status, deadline=request.deadline, today=TODAY) == Wait("EnCoursVisa")
    world.clock.advance(3)
    status = await world.connector.get_status(request.dossier_id)
    assert decide(status, deadline=request.deadline, today=TODAY) == Fetch()

    order: list[str] = []

    async def record(stored: StoredSignature) -> None:
        # at journal time the dossier is still in i-Parapheur (not archived yet)
        listing = (await world.http.get("/sandbox/dossiers")).json()
        order.append(f"journal:{len(listing)}")
        assert stored.signature is not None
        assert await world.blobs.exists(stored.signature)

    stored = await collect_signature(world.connector, world.blobs, request.dossier_id,
                                     owner=SIREN, record=record)
    assert order == ["journal:1"]
    assert (await world.http.get("/sandbox/dossiers")).json() == []  # archived (EFFACER)
    assert stored.bordereau is not None and stored.signed_file is None


async def test_a_worker_killed_between_get_dossier_and_the_journal_loses_nothing(
    world: World,
) -> None:
    request = acte_dossier("acte/B", SETTINGS, document=PDF, document_name="d.pdf",
                           annexes=(), nature="DE", classification="7.1",
                           decision_date=TODAY, subject="Budget", today=TODAY)
    await world.connector.create_dossier(request)
    world.clock.advance(3)

    class Killed(Exception):
        pass

    async def dies(stored: StoredSignature) -> None:
        raise Killed

    with pytest.raises(Killed):
        await collect_signature(world.connector, world.blobs, request.dossier_id,
                                owner=SIREN, record=dies)
    # nothing archived: the retry finds the dossier and the very same signature
    journalled: list[StoredSignature] = []

    async def record(stored: StoredSignature) -> None:
        journalled.append(stored)

    first = await world.connector.get_signed(request.dossier_id)
    stored = await collect_signature(world.connector, world.blobs, request.dossier_id,
                                     owner=SIREN, record=record)
    assert len(journalled) == 1
    assert stored.signature is not None and first.signature is not None
    assert stored.signature.sha256 == hashlib.sha256(first.signature).hexdigest()


async def test_killed_after_the_journal_the_retry_only_archives(world: World) -> None:
    request = acte_dossier("acte/C", SETTINGS, document=PDF, document_name="d.pdf",
                           annexes=(), nature="DE", classification="7.1",
                           decision_date=TODAY, subject="Budget", today=TODAY)
    await world.connector.create_dossier(request)
    world.clock.advance(3)
    await archive_recorded(world.connector, request.dossier_id, action="EFFACER")
    # the retry (the journal already holds the signature) archives again: no error
    await archive_recorded(world.connector, request.dossier_id, action="EFFACER")
    stats = (await world.http.get("/sandbox/stats")).json()
    assert stats["dossiers_erased"] == 1 and stats["dossiers"] == 0


async def test_a_rejection_reaches_the_flow_with_its_annotation_then_is_erased(
    world: World,
) -> None:
    request = pes_dossier("pes/R", SignatureSettings("PES", "Bordereau"),
                          pes=b"<PES_Aller Id='x'/>", file_name="pes.xml", visual_pdf=PDF,
                          today=TODAY)
    assert request.xpath_for_xml_signature == "//Bordereau"
    await world.http.post("/sandbox/fates", json={request.dossier_id: "reject_viewer"})
    await world.connector.create_dossier(request)
    world.clock.advance(3)
    decision = decide(await world.connector.get_status(request.dossier_id),
                      deadline=None, today=TODAY)
    assert decision == Rejected("Délibération incomplète", "Paul Secrétaire", "viewer")
    steps: list[str] = []

    async def record() -> None:
        steps.append("journal")
        assert (await world.http.get("/sandbox/dossiers")).json() != []

    await close_rejected(world.connector, request.dossier_id, record=record)
    assert steps == ["journal"]
    assert decide(await world.connector.get_status(request.dossier_id),
                  deadline=None, today=TODAY) == Missing()


async def test_an_unsigned_dossier_past_its_deadline_is_reported_overdue(world: World) -> None:
    request = acte_dossier("acte/D", SETTINGS, document=PDF, document_name="d.pdf",
                           annexes=(), nature="DE", classification="7.1",
                           decision_date=TODAY, subject="Budget", today=TODAY)
    await world.http.post("/sandbox/fates", json={request.dossier_id: "never"})
    await world.connector.create_dossier(request)
    world.clock.advance(5)
    status = await world.connector.get_status(request.dossier_id)
    assert request.deadline is not None
    late = request.deadline + timedelta(days=1)
    assert decide(status, deadline=request.deadline, today=late) == Wait("NonLu", overdue=True)
    assert decide(status, deadline=request.deadline, today=TODAY) == Wait("NonLu")


def test_settings_from_a_member_record() -> None:
    settings = SignatureSettings.from_mapping(
        {"type": "ACTES", "sub_type": "Arrete", "visibility": "CONFIDENTIEL", "xpath": "."},
        member=SIREN)
    assert settings.visibility.value == "CONFIDENTIEL" and settings.xpath_for_xml_signature == "."
    for bad in ({"type": "ACTES"}, {"type": "A", "sub_type": "B", "visibility": "SECRET"},
                {"type": "A", "sub_type": "B", "xpath": "//x"},
                {"type": "A", "sub_type": "B", "archive_action": "KEEP"}):
        with pytest.raises(ConfigurationError):
            SignatureSettings.from_mapping(bad, member=SIREN)
