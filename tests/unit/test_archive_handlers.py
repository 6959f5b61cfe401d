"""The archive stages' handlers on fakes (members, blobs, journal, publisher) and on the
sandbox archive in process: explicit transfers archived or rejected, an interrupted
upload reconciled through the archive's logbook and never re-sent blindly, an invalid
manifest raised for the dead-letter queue, acknowledged actes archived automatically."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.archive.acts import handle_dossier, handle_flow_event
from agents.archive.delivery import LogbookNotYetError, handle_submitted
from agents.archive.deps import ArchiveDeps
from agents.archive.status import handle_status
from connectors.archive.settings import ArchiveSettings
from connectors.archive.vitam import FoundOperation, VitamConnector
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.journal.deliver import ReconciliationPendingError
from relais.journal.entry import JournalEntry
from relais.members.model import Member, PartnerAccount
from relais.seda.xsd import ManifestInvalidError
from relais.stages import headers as h
from relais.stages.records import FakeRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from sandbox.archive.app import create_archive_sandbox
from sandbox.archive.config import ArchiveConfig, ArchiveFaults

SIREN = "212102313"
PDF = b"%PDF-1.7\n" + b"x" * 5000 + b"\n%%EOF\n"
CODEC = AvroCodec()
OPTIONS = {"tenant": "1", "archival_agency": "Vitam", "auto_archive": "true",
           "archival_agreement": "IC-000001"}


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.streamed = 0

    def add(self, content: bytes, filename: str, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(content).hexdigest()
        self.data[digest] = content
        return {"sha256": digest, "size": len(content), "media_type": media_type,
                "filename": filename}

    async def _chunks(self, sha256: str) -> AsyncIterator[bytes]:
        content = self.data[sha256]
        for start in range(0, len(content), 1024):
            yield content[start:start + 1024]

    def open(self, sha256: str) -> AsyncIterator[bytes]:
        return self._chunks(sha256)

    async def stat(self, sha256: str) -> int | None:
        content = self.data.get(sha256)
        return None if content is None else len(content)

    async def put_bytes(self, data: bytes, *, media_type: str, filename: str,
                        owner: str | None = None) -> BlobRef:
        ref = self.add(data, filename, media_type)
        return BlobRef(**ref)

    async def put_stream(self, chunks: AsyncIterable[bytes], *, media_type: str,
                         filename: str, owner: str | None = None) -> BlobRef:
        self.streamed += 1
        data = b"".join([chunk async for chunk in chunks])
        return await self.put_bytes(data, media_type=media_type, filename=filename, owner=owner)


class Journal:
    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}

    def get(self, flow_id: str) -> JournalEntry | None:
        return self.entries.get(flow_id)

    def put_local(self, entry: JournalEntry) -> None:
        self.entries[entry.flow_id] = entry


class Publisher:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def publish(self, topic: str, *, key: str | bytes | None, schema_name: str,
                      record: dict[str, Any], headers: EventHeaders) -> None:
        self.published.append(record)


class Archives:
    def __init__(self, archive: Any) -> None:
        self.archive = archive

    def for_member(self, member: Member) -> Any:
        return self.archive


class Members:
    def __init__(self, member: Member) -> None:
        self.member = member

    def get(self, siren: str) -> Member | None:
        return self.member if siren == self.member.siren else None


def _member(**options: str) -> Member:
    archive = PartnerAccount(url="http://archive.test", options={**OPTIONS, **options})
    tdt = PartnerAccount(url="http://tdt.test", login="dijon")
    return Member(siren=SIREN, name="Dijon", department="021", token_sha256="x",
                  registered_at=datetime(2026, 1, 1, tzinfo=UTC),
                  accounts={"archive": archive, "tdt": tdt})


def _deps(tmp_path: Path, archive: Any = None, faults: ArchiveFaults | None = None,
          **options: str) -> ArchiveDeps:
    member = _member(**options)
    if archive is None:
        app = create_archive_sandbox(ArchiveConfig(faults=faults or ArchiveFaults()),
                                     spool=tmp_path)
        client = httpx.AsyncClient(base_url="http://archive.test",
                                   transport=httpx.ASGITransport(app=app))
        archive = VitamConnector(client, ArchiveSettings.from_account(member.accounts["archive"],
                                                                      SIREN), member=SIREN)
    return ArchiveDeps(codec=CODEC, members=Members(member), blobs=Blobs(), journal=Journal(),
                       publisher=Publisher(), archives=Archives(archive),
                       poll_schedule=("5s",))


def _submission(deps: ArchiveDeps, submission_id: str = "ARCH-1") -> FakeRecord:
    blobs = deps.blobs
    assert isinstance(blobs, Blobs)
    record = {
        "submission_id": submission_id, "member_siren": SIREN,
        "title": "Registre des délibérations 2026", "description_level": "RecordGrp",
        "description": "Délibérations du conseil municipal", "start_date": "2026-01-01",
        "end_date": "2026-06-30", "keywords": ["conseil municipal"],
        "originating_service": "Secrétariat général", "archival_agreement": None,
        "archival_profile": None, "access_rule": "ACC-00001", "appraisal_rule": "APP-00001",
        "appraisal_final_action": "Keep",
        "documents": [
            {"blob": blobs.add(PDF, "délibération 1.pdf", "application/pdf"),
             "title": None, "document_type": "Délibération", "group": None},
            {"blob": blobs.add(b"<x/>", "annexe.xml", "application/xml"),
             "title": "Annexe", "document_type": None, "group": "Annexes"},
        ],
    }
    flow_id = flow_id_for(SIREN, submission_id)
    return FakeRecord(topic="relais.archive.submitted",
                      value=CODEC.encode("ArchiveSubmission", record), key=SIREN.encode(),
                      headers=((FLOW_ID_HEADER, flow_id.encode()), (h.MEMBER, SIREN.encode())))


def _decoded(outputs: list[Outbound], suffix: str) -> list[dict[str, Any]]:
    return [CODEC.decode(o.value or b"").record for o in outputs if o.topic.endswith(suffix)]


def _poll(outputs: list[Outbound]) -> FakeRecord:
    poll = next(o for o in outputs if o.topic.startswith("relais.delay."))
    return FakeRecord(topic="relais.archive.status", value=poll.value, key=poll.key,
                      headers=tuple(poll.headers))


async def _until_final(deps: ArchiveDeps, record: FakeRecord) -> list[Outbound]:
    import asyncio

    for _ in range(200):
        outputs = await handle_status(record, deps)
        if not any(o.topic.startswith("relais.delay.") for o in outputs):
            return outputs
        record = _poll(outputs)
        await asyncio.sleep(0.02)
    raise AssertionError("never final")


async def test_an_explicit_transfer_is_archived_with_the_archive_ids(tmp_path: Path) -> None:
    deps = _deps(tmp_path)
    outputs = await handle_submitted(_submission(deps), deps)
    events = _decoded(outputs, "flows.events")
    assert [e["state"] for e in events] == ["transferred"]
    operation_id = events[0]["partner_ref"]
    assert operation_id and events[0]["details"]["objects"] == "2"
    assert [r["step"] for r in deps.publisher.published] == ["POSTING"]  # type: ignore[attr-defined]
    journal = _decoded(outputs, "journal.deliveries")
    assert journal[0]["step"] == "POSTED" and journal[0]["partner_ref"] == operation_id
    final = await _until_final(deps, _poll(outputs))
    archived = _decoded(final, "flows.events")
    assert [e["state"] for e in archived] == ["archived"]
    details = archived[0]["details"]
    assert {k for k in details if k.startswith("unit.")} == {"unit.AU1", "unit.AU2", "unit.AU3",
                                                            "unit.AU4"}
    assert {k for k in details if k.startswith("object.")} == {"object.ID1", "object.ID2"}
    note = _decoded(final, ".notifications")[0]
    assert note["documents"][0]["filename"] == f"ATR-{operation_id}.xml"
    # a redelivered submission is not sent again
    assert await handle_submitted(_submission(deps), deps) == []


async def test_a_tampered_file_ends_archive_rejected_with_the_reason(tmp_path: Path) -> None:
    deps = _deps(tmp_path, faults=ArchiveFaults(tamper_rate=1.0))
    outputs = await handle_submitted(_submission(deps), deps)
    final = await _until_final(deps, _poll(outputs))
    note = _decoded(final, ".notifications")[0]
    assert note["state"] == "archive-rejected" and note["kind"] == "REJECTED"
    assert note["reasons"][0]["code"] == "CHECK_DIGEST"
    assert "CHECK_DIGEST" in note["message"] and "ID1" in note["message"]


async def test_a_fatal_operation_is_reported_not_polled_for_ever(tmp_path: Path) -> None:
    deps = _deps(tmp_path, faults=ArchiveFaults(fatal_rate=1.0))
    outputs = await handle_submitted(_submission(deps), deps)
    final = await _until_final(deps, _poll(outputs))
    event = _decoded(final, "flows.events")[0]
    assert (event["state"], event["error_code"]) == ("failed", "archive_operation_fatal")


class CutArchive:
    """An archive whose logbook holds what an interrupted upload created (or not)."""

    def __init__(self, found: str | None) -> None:
        self.found = found
        self.uploads = 0
        self.settings = None

    async def upload(self, sip: AsyncIterator[bytes], length: int, *,
                     message_identifier: str) -> str:
        self.uploads += 1
        async for _ in sip:
            pass
        return "op-new"

    async def find_operation(self, message_identifier: str) -> FoundOperation | None:
        return FoundOperation(self.found, "OK") if self.found else None


def _posting(deps: ArchiveDeps, record: FakeRecord, age: timedelta) -> None:
    flow_id = flow_id_for(SIREN, "ARCH-1")
    deps.journal.put_local(JournalEntry(
        flow_id=flow_id, flow_type="archive", member_siren=SIREN, partner="archive",
        step="POSTING", idempotency_key=flow_id, account="http://archive.test",
        keys={"message_identifier": flow_id}, updated_at=datetime.now(UTC) - age))


async def test_an_interrupted_upload_found_in_the_logbook_is_not_sent_again(
        tmp_path: Path) -> None:
    archive = CutArchive(found="op-earlier")
    deps = _deps(tmp_path, archive=archive)
    record = _submission(deps)
    _posting(deps, record, timedelta(seconds=5))
    outputs = await handle_submitted(record, deps)
    assert archive.uploads == 0
    assert _decoded(outputs, "flows.events")[0]["partner_ref"] == "op-earlier"


async def test_an_interrupted_upload_absent_waits_then_is_sent_once(tmp_path: Path) -> None:
    archive = CutArchive(found=None)
    deps = _deps(tmp_path, archive=archive)
    record = _submission(deps)
    _posting(deps, record, timedelta(seconds=5))
    with pytest.raises(ReconciliationPendingError) as caught:
        await handle_submitted(record, deps)
    assert caught.value.retriable and isinstance(caught.value.__cause__, LogbookNotYetError)
    assert archive.uploads == 0
    _posting(deps, record, timedelta(seconds=600))
    outputs = await handle_submitted(record, deps)
    assert archive.uploads == 1
    assert _decoded(outputs, "flows.events")[0]["partner_ref"] == "op-new"


async def test_an_invalid_manifest_is_raised_for_the_dead_letter_queue(tmp_path: Path) -> None:
    archive = CutArchive(found=None)
    deps = _deps(tmp_path, archive=archive, seda_version="2.2", archival_agreement=" ")
    with pytest.raises(ManifestInvalidError) as caught:
        await handle_submitted(_submission(deps), deps)
    assert caught.value.reasons and caught.value.reasons[0].field == "manifest.xml"
    assert archive.uploads == 0


async def test_a_submission_naming_a_missing_blob_is_rejected(tmp_path: Path) -> None:
    deps = _deps(tmp_path, archive=CutArchive(found=None))
    record = _submission(deps)
    deps.blobs.data.clear()  # type: ignore[attr-defined]
    outputs = await handle_submitted(record, deps)
    note = _decoded(outputs, ".notifications")[0]
    assert note["state"] == "rejected"
    assert {r["code"] for r in note["reasons"]} == {"blob_not_found"}


class Tdt:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def get_status(self, transaction_id: str) -> Any:
        self.calls.append(f"status {transaction_id}")
        return type("Status", (), {"document": b"<ARActe/>"})()

    async def get_stamped_acte(self, transaction_id: str) -> bytes:
        self.calls.append(f"stamp {transaction_id}")
        return b"%PDF-1.4 tampon"

    async def save_stamped_acte(
        self, transaction_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[Any]]
    ) -> Any:
        pdf = await self.get_stamped_acte(transaction_id)

        async def chunks() -> AsyncIterator[bytes]:
            yield pdf[:5]
            yield pdf[5:]

        return await store(chunks())


async def test_an_acknowledged_acte_is_archived_automatically(tmp_path: Path) -> None:
    deps = _deps(tmp_path)
    blobs = deps.blobs
    assert isinstance(blobs, Blobs)
    acte_flow = flow_id_for(SIREN, "DELIB-42")
    dossier = {
        "submission_id": "DELIB-42", "member_siren": SIREN, "nature_code": 1, "matieres": [1, 1],
        "numero_interne": "DELIB42", "decision_date": date(2026, 3, 2), "objet": "Budget primitif",
        "document": {"blob": blobs.add(PDF, "délib.pdf", "application/pdf"), "typology": "99_DE"},
        "annexes": [{"blob": blobs.add(b"%PDF-1.4 a", "annexe.pdf", "application/pdf"),
                     "typology": "22_DP"}],
        "document_papier": False, "classification_date": None,
    }
    value = CODEC.encode("ActeSubmission", dossier)
    headers = ((FLOW_ID_HEADER, acte_flow.encode()), (h.MEMBER, SIREN.encode()))
    kept = await handle_dossier(FakeRecord(topic="relais.acts.delivery", value=value,
                                           key=acte_flow.encode(), headers=headers), deps)
    assert [o.topic for o in kept] == ["relais.archive.dossiers"]
    deps.dossiers = {acte_flow: CODEC.decode(kept[0].value or b"").record}  # type: ignore[assignment]
    tdt = Tdt()
    deps.extra["tdt"] = Archives(tdt)
    event = {"flow_id": acte_flow, "flow_type": "acte", "member_siren": SIREN,
             "submission_id": "DELIB-42", "state": "acknowledged",
             "previous_state": "acknowledged", "stage": "acts-status", "sequence": 5,
             "partner_ref": "021-212102313-20260302-DELIB42-DE", "error_code": None,
             "error_message": None, "reasons": [], "occurred_at": datetime.now(UTC),
             "details": {"child_event": "stamped-acte", "transaction_id": "77",
                         "document": "stamped_acte"}}
    record = FakeRecord(topic="relais.flows.events", value=CODEC.encode("FlowState", event),
                        key=acte_flow.encode())
    outputs = await handle_flow_event(record, deps)
    assert tdt.calls == ["status 77", "stamp 77"]
    assert blobs.streamed == 1  # the stamped copy went to the store as a stream
    started = _decoded(outputs, "flows.events")[0]
    assert (started["flow_type"], started["state"]) == ("archive", "received")
    submission = _decoded(outputs, "archive.submitted")[0]
    assert [d["document_type"] for d in submission["documents"]] == [
        "Acte", "Annexe", "ARActe", "Acte tamponné"]
    assert [d["group"] for d in submission["documents"]] == [
        None, "Annexes", "Échanges avec la préfecture", "Échanges avec la préfecture"]
    # then the transfer goes as any other, with the acte's tree
    forward = next(o for o in outputs if o.topic == "relais.archive.submitted")
    sent = await handle_submitted(FakeRecord(topic=forward.topic, value=forward.value,
                                             key=forward.key, headers=tuple(forward.headers)),
                                  deps)
    final = await _until_final(deps, _poll(sent))
    assert _decoded(final, "flows.events")[0]["state"] == "archived"
    # an event of another kind, or a member not opted in, starts nothing
    other = replace(record, value=CODEC.encode("FlowState", {**event, "details": {}}))
    assert await handle_flow_event(other, deps) == []
    deps.members = Members(_member(auto_archive="false"))
    assert await handle_flow_event(record, deps) == []


async def test_the_ingress_checks_the_blobs_an_archive_submission_names(tmp_path: Path) -> None:
    from agents.ingress.handler import blob_reasons

    class Sizes:
        async def stat(self, sha256: str) -> int | None:
            return 3 if sha256 == "a" * 64 else None

        async def owned_by(self, sha256: str, member: str) -> bool:
            return member == SIREN

    record = {"documents": [
        {"blob": {"sha256": "a" * 64, "size": 3, "media_type": "x", "filename": "f"}},
        {"blob": {"sha256": "b" * 64, "size": 3, "media_type": "x", "filename": "g"}}]}
    reasons = await blob_reasons(Sizes(), record, SIREN)  # type: ignore[arg-type]
    assert [(r.field, r.code) for r in reasons] == [("documents[1].blob.sha256",
                                                     "blob_not_found")]
    other = await blob_reasons(Sizes(), record, "200000008")  # type: ignore[arg-type]
    assert ("documents[0].blob.sha256", "blob_not_owned") in [(r.field, r.code) for r in other]


async def test_an_answer_lost_after_the_archive_took_the_sip_is_not_sent_twice(
        tmp_path: Path) -> None:
    import asyncio

    from relais.errors import PartnerTransientError

    deps = _deps(tmp_path, faults=ArchiveFaults(error_after_commit_rate=1.0))
    archive = deps.archives.for_member(_member())  # type: ignore[attr-defined]
    client = archive._client  # type: ignore[attr-defined]
    state = client._transport.app.state.archive
    record = _submission(deps)
    with pytest.raises(PartnerTransientError):  # 503 after the archive created the operation
        await handle_submitted(record, deps)
    entry = deps.journal.get(flow_id_for(SIREN, "ARCH-1"))
    assert entry is not None and entry.step == "POSTING"
    state.faults = state.faults.updated({"error_after_commit_rate": 0.0})
    for _ in range(100):  # the archive reads the manifest: then its logbook knows it
        if all(op.checked for op in state.operations.values()):
            break
        await asyncio.sleep(0.02)
    outputs = await handle_submitted(record, deps)
    assert len(state.operations) == 1  # sent once
    (operation_id,) = state.operations
    assert _decoded(outputs, "flows.events")[0]["partner_ref"] == operation_id
