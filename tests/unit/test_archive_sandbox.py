"""The sandbox archive driven by the real connector over httpx.ASGITransport: SIPs built
by relais.seda, checked as Vitam checks them (schema, digests, sizes, container), the
operation states, the ATR and the logbook search."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from connectors.archive.settings import ArchiveSettings
from connectors.archive.vitam import OperationState, VitamConnector
from relais.errors import PartnerAuthError, PartnerRefusedError
from relais.seda.model import SedaVersion
from relais.seda.package import DocumentSpec, Sip, UnitSpec, prepare_sip
from relais.seda.reply import SedaReply
from relais.seda.sip import SipEntry, bytes_entry
from sandbox.archive.app import create_archive_sandbox
from sandbox.archive.config import ArchiveConfig, ArchiveFaults
from tests.conformance.seda_helpers import MemoryBlobs, spec

PDF = b"%PDF-1.4\n" + b"contenu " * 2000 + b"\n%%EOF\n"


def _connector(app: object, tenant: int = 1, context: str = "DEFAULT_WORKFLOW"
               ) -> VitamConnector:
    client = httpx.AsyncClient(base_url="http://archive.test",
                               transport=httpx.ASGITransport(app=app))  # type: ignore[arg-type]
    return VitamConnector(client, ArchiveSettings(tenant=tenant, archival_agency="Vitam",
                                                  context_id=context), member="212102313")


async def _sip(version: SedaVersion = SedaVersion.V2_1, message_id: str = "212102313-M1"
               ) -> tuple[Sip, MemoryBlobs]:
    from datetime import UTC, datetime

    blobs = MemoryBlobs()
    unit = UnitSpec("Délibération", level="RecordGrp", children=(
        UnitSpec("Acte", documents=(DocumentSpec(blobs.add(PDF), "acte.pdf", "application/pdf"),)),
        UnitSpec("Annexe", documents=(DocumentSpec(blobs.add(b"<a/>"), "a.xml", "text/xml"),)),
    ))
    sip = await prepare_sip(spec(version, (unit,), message_id), blobs.open,
                            now=datetime(2026, 12, 4, tzinfo=UTC))
    return sip, blobs


async def _until_done(connector: VitamConnector, operation_id: str) -> OperationState:
    for _ in range(200):
        state = await connector.operation(operation_id)
        if state.completed or state.stuck:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError("the operation never completed")


async def _ingest(app: object, sip_entries: list[SipEntry], message_id: str
                  ) -> tuple[VitamConnector, str, OperationState, SedaReply | None]:
    from relais.seda.sip import sip_length, write_sip

    connector = _connector(app)
    operation_id = await connector.upload(write_sip(sip_entries), sip_length(sip_entries),
                                          message_identifier=message_id)
    state = await _until_done(connector, operation_id)
    return connector, operation_id, state, await connector.transfer_reply(operation_id)


@pytest.fixture
def app(tmp_path: Path) -> object:
    return create_archive_sandbox(ArchiveConfig(), spool=tmp_path)


@pytest.mark.parametrize("version", [SedaVersion.V2_1, SedaVersion.V2_2])
async def test_a_good_sip_is_archived_with_ids_for_units_and_objects(
        app: object, version: SedaVersion) -> None:
    sip, _ = await _sip(version)
    connector, operation_id, state, reply = await _ingest(app, sip.entries, "212102313-M1")
    assert (state.state, state.status) == ("COMPLETED", "OK")
    assert reply is not None and reply.accepted
    assert reply.message_request_identifier == "212102313-M1"
    assert reply.message_identifier == operation_id
    assert set(reply.unit_ids) == {"AU1", "AU2", "AU3"}
    assert set(reply.object_ids) == {"ID1", "ID2"}
    found = await connector.find_operation("212102313-M1")
    assert found is not None and found.operation_id == operation_id


async def test_a_digest_mismatch_is_ko_check_digest(app: object) -> None:
    sip, _ = await _sip()
    good = sip.manifest.decode()
    declared = sip.transfer.files()[0].sha512
    tampered = good.replace(declared, "0" * 128).encode()
    entries = [bytes_entry("manifest.xml", tampered), *sip.entries[1:]]
    _, _, state, reply = await _ingest(app, entries, "212102313-M1")
    assert state.status == "KO"
    assert reply is not None and not reply.accepted
    assert [e.type_code for e in reply.failed_events()] == ["CHECK_DIGEST"]
    assert "ID1" in reply.reasons()[0]
    assert reply.unit_ids == {}


async def test_a_wrong_size_is_a_warning_and_still_archived(app: object) -> None:
    sip, _ = await _sip()
    size = str(sip.transfer.files()[1].size)
    manifest = sip.manifest.replace(f"<Size>{size}</Size>".encode(), b"<Size>999</Size>")
    _, _, state, reply = await _ingest(app, [bytes_entry("manifest.xml", manifest),
                                             *sip.entries[1:]], "M")
    assert state.status == "WARNING"
    assert reply is not None and reply.accepted
    assert [e.type_code for e in reply.events] == ["CHECK_OBJECT_SIZE"]


async def test_an_invalid_manifest_is_an_early_ko_without_request_identifier(app: object) -> None:
    manifest = b'<ArchiveTransfer xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1"/>'
    _, _, state, reply = await _ingest(app, [bytes_entry("manifest.xml", manifest)], "M")
    assert state.status == "KO"
    assert reply is not None and reply.message_request_identifier is None
    assert reply.failed_events()[0].type_code == "CHECK_SEDA"


async def test_a_path_escape_is_refused(app: object) -> None:
    sip, _ = await _sip()
    entries = [*sip.entries, bytes_entry("../../etc/evil", b"x")]
    _, _, state, reply = await _ingest(app, entries, "M")
    assert state.status == "KO"
    assert reply is not None and reply.failed_events()[0].type_code == "CHECK_CONTAINER"


async def test_not_a_zip(app: object) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"not a zip"

    connector = _connector(app)
    operation_id = await connector.upload(body(), 9, message_identifier="M")
    assert (await _until_done(connector, operation_id)).status == "KO"


async def test_unknown_workflow_tenant_and_fatal(tmp_path: Path) -> None:
    app = create_archive_sandbox(ArchiveConfig(faults=ArchiveFaults(fatal_rate=1.0)),
                                 spool=tmp_path)
    sip, _ = await _sip()
    with pytest.raises(PartnerRefusedError):
        await _connector(app, context="NOPE").upload(sip.stream(), sip.length,
                                                     message_identifier="M")
    with pytest.raises(PartnerAuthError):
        await _connector(app, tenant=99).operation("x")
    connector = _connector(app)
    operation_id = await connector.upload(sip.stream(), sip.length, message_identifier="M")
    state = await _until_done(connector, operation_id)
    assert state.stuck and (state.state, state.status) == ("PAUSE", "FATAL")
    assert await connector.transfer_reply(operation_id) is None


async def test_tamper_knob_gives_check_digest(tmp_path: Path) -> None:
    app = create_archive_sandbox(ArchiveConfig(faults=ArchiveFaults(tamper_rate=1.0)),
                                 spool=tmp_path)
    sip, _ = await _sip()
    _, _, state, reply = await _ingest(app, sip.entries, "M")
    assert state.status == "KO"
    assert reply is not None and reply.failed_events()[0].type_code == "CHECK_DIGEST"
    assert os.listdir(tmp_path) == []  # the spooled SIP is removed


def test_the_zip_the_sandbox_reads_is_the_one_sent() -> None:
    async def run() -> bytes:
        sip, _ = await _sip()
        return b"".join([chunk async for chunk in sip.stream()])

    names = zipfile.ZipFile(io.BytesIO(asyncio.run(run()))).namelist()
    assert names == ["manifest.xml", "content/ID1.pdf", "content/ID2.xml"]


def test_the_catalogue_entry_serves_the_configured_applications(tmp_path: Path) -> None:
    import json

    from relais.errors import ConfigurationError
    from sandbox.archive.partner import ARCHIVE, build
    from sandbox.catalogue import by_name

    assert by_name("archive") == (ARCHIVE,)
    assert set(build(None).accounts) == {"relais"}
    path = tmp_path / "archive.json"
    path.write_text(json.dumps({"applications": ["sae-dijon"], "tenants": [7],
                                "faults": {"tamper_rate": 0.5}}))
    built = build(path)
    assert set(built.accounts) == {"sae-dijon"}
    assert built.app.state.archive.config.tenants == (7,)
    assert built.app.state.archive.faults.tamper_rate == 0.5
    path.write_text(json.dumps({"nope": 1}))
    with pytest.raises(ConfigurationError, match="nope"):
        build(path)
