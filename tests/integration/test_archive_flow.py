"""The archive flow end to end on the real broker: actes acknowledged by the sandbox TdT
are archived automatically in the sandbox archive (Vitam's ingest API, served by this
test's event loop), a transfer whose file the archive finds tampered (digest mismatch)
ends *archive-rejected* with the archive's reason shown to the member, and a worker
killed in the middle of an upload loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.demo_documents import minimal_pdf
from ops.flows import FlowFilter
from ops.members import Registration, new_member
from ops.stack import Stack, free_port, sandbox_config, sandbox_member
from ops.submissions import ActeDraft, publish_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.members.model import PartnerAccount
from relais.settings import Settings
from relais.wire.headers import EventHeaders
from sandbox.archive.app import create_archive_sandbox
from sandbox.archive.config import ArchiveConfig, ArchiveFaults
from sandbox.common.server import running_sandbox
from tests.integration import stacks
from topics import member as member_topics

pytestmark = pytest.mark.integration

ACTES = 3


@pytest.fixture(scope="module")
def archive_stack(hub_kafka_bootstrap: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, int]]:
    """The hub and the sandbox TdT; the member is registered before the worker starts,
    its archive on a port the test's in-process sandbox archive will listen on."""
    settings = stacks.stack_settings(hub_kafka_bootstrap, tmp_path_factory.mktemp("archive"),
                                     "archive")
    tdt_members = [sandbox_member(settings, siren, f"Commune {i}", "021")
                   for i, siren in enumerate(stacks.sirens(2))]
    archive_port = free_port()
    archived = _with_archive(settings, stacks.sirens(2)[0], f"http://127.0.0.1:{archive_port}")
    env = {"RELAIS_POLL_TIERS": "5s,5s,5s,30s", "RELAIS_RETRY_TIERS": "5s,5s,5s,5s,5s,5s,5s,5s"}
    with stacks.running_stack(settings, [archived],
                              sandbox_config(tdt_members, faults={"anomaly_rate": 0.0}),
                              extra_env=env) as stack:
        yield stack, archive_port


def _with_archive(settings: Settings, siren: str, url: str) -> Registration:
    tdt = sandbox_member(settings, siren, "Commune", "021").member.account("tdt")
    archive = PartnerAccount(url=url, options={
        "tenant": "1", "archival_agency": "Vitam-sandbox", "archival_agreement": "IC-000001",
        "seda_version": "2.2", "auto_archive": "true", "access_rule": "ACC-00001",
        "reconcile_grace_s": "5"})
    return new_member(siren, "Commune archivée", "021",
                      accounts={"tdt": tdt, "archive": archive} if tdt else {"archive": archive})


async def _states(settings: Settings, flows: set[str], wanted: set[str],
                  timeout: float) -> dict[str, str]:
    return await stacks.wait_for_states(
        settings, FlowFilter(flow_type="archive"), stacks.settled_in(flows, wanted),
        timeout=timeout, every=2, flows=flows)


async def _publish(settings: Settings, schema: str, record: dict[str, Any]) -> None:
    async with stacks.publishing(settings) as publisher:
        await publisher.publish(
            member_topics.submissions(record["member_siren"]).name,
            key=record["submission_id"], schema_name=schema, record=record,
            headers=EventHeaders.new(source="/tests", type=f"fr.relais.archive.{schema}",
                                     subject=record["submission_id"], flow_id=None))


async def test_acknowledged_actes_are_archived_then_a_tampered_file_is_rejected(
        archive_stack: tuple[Stack, int], tmp_path: Path) -> None:
    stack, port = archive_stack
    settings = stack.settings
    app = create_archive_sandbox(ArchiveConfig(), spool=tmp_path / "spool")
    async with running_sandbox(app, port=port) as archive:
        siren = stacks.sirens(2)[0]
        store = FilesystemBlobStore(settings.blob_dir)
        blob = await store.put_bytes(minimal_pdf("acte à archiver"),
                                     media_type="application/pdf", filename="délibération.pdf",
                                     owner=siren)
        async with stacks.publishing(settings) as publisher:
            for i in range(ACTES):
                await publish_acte(publisher, ActeDraft(
                    submission_id=f"ARCH-{i}", member_siren=siren, nature_code=1,
                    matieres=(1, 1), numero_interne=f"A{i:04d}", decision_date=date(2026, 11, 2),
                    objet=f"Délibération à archiver n°{i}", document=blob))
        archive_flows = {flow_id_for(siren, f"acte-ARCH-{i}") for i in range(ACTES)}
        states = await _states(settings, archive_flows, {"archived"}, timeout=180)
        assert states == {flow: "archived" for flow in archive_flows}, states
        async with httpx.AsyncClient(base_url=archive.url) as client:
            operations = (await client.get("/sandbox/operations")).json()
        assert len(operations) == ACTES  # each acte sent once
        assert {op["status"] for op in operations} == {"OK"}

        # a tampered file: the archive's digest check fails, the member is told why
        app.state.archive.faults = app.state.archive.faults.updated({"tamper_rate": 1.0})
        document = await store.put_bytes(minimal_pdf("registre"), media_type="application/pdf",
                                         filename="registre.pdf", owner=siren)
        await _publish(settings, "ArchiveSubmission", {
            "submission_id": "REGISTRE-2026", "member_siren": siren,
            "title": "Registre des arrêtés 2026", "description_level": "File",
            "description": None, "start_date": "2026-01-01", "end_date": "2026-12-31",
            "keywords": ["arrêtés"], "originating_service": None, "archival_agreement": None,
            "archival_profile": None, "access_rule": None, "appraisal_rule": None,
            "appraisal_final_action": None,
            "documents": [{"blob": document.to_dict(), "title": None, "document_type": None,
                           "group": None}],
        })
        tampered = flow_id_for(siren, "REGISTRE-2026")
        states = await _states(settings, {tampered}, {"archive-rejected"}, timeout=120)
        assert states == {tampered: "archive-rejected"}, states
    notes = await stacks.notifications(settings.bootstrap_servers, siren)
    rejected = [n for n in notes if n["flow_id"] == tampered and n["state"] == "archive-rejected"]
    assert len(rejected) == 1
    assert rejected[0]["reasons"][0]["code"] == "CHECK_DIGEST"
    assert "digest" in rejected[0]["message"]
    archived = [n for n in notes if n["flow_id"] in archive_flows and n["state"] == "archived"]
    assert len(archived) == ACTES
    assert all(any(k.startswith("unit.") for k in n["details"]) for n in archived)


async def _upload_started(stack: Stack, flow_id: str, timeout: float) -> None:
    worker = stack.processes["worker"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("archive.upload_started" in line and flow_id in line
               for line in worker.output().splitlines()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the upload of {flow_id} never started")


async def test_a_worker_killed_mid_upload_loses_nothing_and_sends_once(
        archive_stack: tuple[Stack, int], tmp_path: Path) -> None:
    stack, port = archive_stack
    settings = stack.settings
    siren = stacks.sirens(2)[0]
    # the archive holds every request 6 s before reading it: the worker dies meanwhile
    app = create_archive_sandbox(ArchiveConfig(faults=ArchiveFaults(latency_ms=6000)),
                                 spool=tmp_path / "spool")
    async with running_sandbox(app, port=port) as archive:
        store = FilesystemBlobStore(settings.blob_dir)
        document = await store.put_bytes(minimal_pdf("plan") * 50, media_type="application/pdf",
                                         filename="plan.pdf", owner=siren)
        await _publish(settings, "ArchiveSubmission", {
            "submission_id": "KILLED-1", "member_siren": siren, "title": "Plan",
            "description_level": "Item", "description": None, "start_date": None,
            "end_date": None, "keywords": [], "originating_service": None,
            "archival_agreement": None, "archival_profile": None, "access_rule": None,
            "appraisal_rule": None, "appraisal_final_action": None,
            "documents": [{"blob": document.to_dict(), "title": None, "document_type": None,
                           "group": None}],
        })
        flow = flow_id_for(siren, "KILLED-1")
        await _upload_started(stack, flow, timeout=120)
        await asyncio.sleep(1.0)
        stack.processes["worker"].kill()
        app.state.archive.faults = app.state.archive.faults.updated({"latency_ms": 0})
        await asyncio.to_thread(stack.start_worker)
        states = await _states(settings, {flow}, {"archived"}, timeout=180)
        assert states == {flow: "archived"}, states
        async with httpx.AsyncClient(base_url=archive.url) as client:
            operations = (await client.get("/sandbox/operations")).json()
    mine = [op for op in operations if op["message_identifier"] == flow]
    assert len(mine) == 1, operations  # the cut upload created nothing; one resend
    assert mine[0]["status"] == "OK"
    notes = await stacks.notifications(settings.bootstrap_servers, siren)
    assert [n["state"] for n in notes if n["flow_id"] == flow
            and n["kind"] != "ACCEPTED"] == ["transferred", "archived"]
