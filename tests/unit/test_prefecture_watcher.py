"""The prefecture watcher on fakes: delivery from the archive's own XML, bounded retries,
dead letters and the member told, never an empty delivery."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import pytest

from agents.acts.links import ActeLink
from agents.acts.prefecture import PrefectureWatcher
from connectors.tdt.models import PrefectureDocumentRef
from relais.actes.archive import pack_archive
from relais.blobs.model import BlobRef
from relais.documents import sample_pdf
from relais.errors import (
    InfrastructureError,
    PartnerPermanentError,
    PartnerTransientError,
)
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec
from sandbox.tdt.prefecture_xml import (
    build_defere_ta,
    build_envelope_pref,
    build_lettre_observations,
)
from tests.unit.acts_fakes import SIREN, TDT_URL, FakeBlobs, FakeConnector, World, member
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS, dlq

ID_ACTE = "021-217500016-20260302-D2026_042-DE"
FLOW = "217500016-flow-1"
TRANSACTION = "4242"
NOTIFICATIONS = member_topics.notifications(SIREN).name
DLQ = dlq("acts-prefecture").name


def letter_archive(kind: str = "4-1") -> bytes:
    pdf_name = f"{ID_ACTE}-{kind}_1.pdf"
    message_name = f"{ID_ACTE}-{kind}_0.xml"
    if kind == "4-1":
        xml = build_lettre_observations(ID_ACTE, date(2026, 4, 1), "Incompétence", pdf_name)
    else:
        xml = build_defere_ta(ID_ACTE, date(2026, 4, 1), "Incompétence", [pdf_name])
    envelope = build_envelope_pref("021", SIREN, [message_name])
    return pack_archive([("TACT--SPREF0211-217500016-20260401-1.xml", envelope),
                         (message_name, xml), (pdf_name, sample_pdf("lettre"))])


class PrefectureConnector(FakeConnector):
    def __init__(self) -> None:
        super().__init__()
        self.documents: list[PrefectureDocumentRef] = []
        self.archives: dict[str, bytes] = {}
        self.fetch_errors: list[Exception] = []
        self.fetched: list[str] = []
        self.marked: list[str] = []

    async def list_prefecture_documents(self) -> list[PrefectureDocumentRef]:
        return list(self.documents)

    async def save_prefecture_document(
        self, document_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[BlobRef]]
    ) -> BlobRef:
        """As S²LOW's download page sends it: the .tar.gz in chunks, into ``store``."""
        self.fetched.append(document_id)
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        archive = self.archives[document_id]

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(archive), 4096):
                yield archive[start:start + 4096]

        return await store(chunks())

    async def mark_prefecture_document_read(self, document_id: str) -> None:
        self.marked.append(document_id)


class FailingBlobs(FakeBlobs):
    async def put_bytes(self, data: bytes, *, media_type: str, filename: str,
                        expected_sha256: str | None = None, max_bytes: int | None = None,
                        owner: str | None = None) -> Any:
        raise InfrastructureError("disk full")


class Members:
    def all(self) -> list[Member]:
        return [member()]


def ref(document_id: str = "9001", tdt_type: str = "4") -> PrefectureDocumentRef:
    return PrefectureDocumentRef(id=document_id, type=tdt_type,
                                 related_transaction_id=TRANSACTION, number="D2026_042",
                                 unique_id=ID_ACTE, last_status_id=7)


@pytest.fixture
def world() -> World:
    world = World(AvroCodec(), connector=PrefectureConnector())
    world.links.put_local(ActeLink(
        flow_id=FLOW, member_siren=SIREN, submission_id="sub-1", id_acte=ID_ACTE,
        numero_interne="D2026_042", decision_date=date(2026, 3, 2), nature_code=1,
        delivery="POSTED", idempotency_key="k", tdt_url=TDT_URL, transaction_id=TRANSACTION,
    ))
    return world


def connector(world: World) -> PrefectureConnector:
    assert isinstance(world.connector, PrefectureConnector)
    return world.connector


def published(world: World, topic: str) -> list[bytes]:
    return [value for t, value in world.journal.published if t == topic]


def decoded(world: World, topic: str) -> list[dict[str, Any]]:
    return [world.codec.decode(value).record for value in published(world, topic)]


async def test_a_message_is_delivered_with_the_code_from_its_xml(world: World) -> None:
    tdt = connector(world)
    tdt.documents = [ref("9001", "4")]
    tdt.archives["9001"] = letter_archive("4-1")
    watcher = PrefectureWatcher(world.deps(), Members())
    assert await watcher.run_once() == 1
    [note] = decoded(world, NOTIFICATIONS)
    assert note["kind"] == "PARTNER_MESSAGE"
    assert note["details"]["type_code"] == "4-1"
    assert note["details"]["tdt_type"] == "4"
    assert note["details"]["motif"] == "Incompétence"
    assert len(note["documents"]) == 3
    assert all(world.blobs.owners[d["sha256"]] == {SIREN} for d in note["documents"])
    # the archive went into the blob store as it came, the member's, named in the details
    archive = note["details"]["tdt_archive_sha256"]
    assert world.blobs.blobs[archive] == tdt.archives["9001"]
    assert world.blobs.owners[archive] == {SIREN} and world.blobs.stream_puts == 1
    assert tdt.marked == ["9001"]
    # listed again (not yet marked read on the TdT side): not fetched, not delivered twice
    assert await watcher.run_once() == 0
    assert tdt.fetched == ["9001"]


async def test_a_failing_fetch_is_dead_lettered_after_bounded_attempts(world: World) -> None:
    tdt = connector(world)
    tdt.documents = [ref("9001", "5")]
    tdt.fetch_errors = [PartnerTransientError("TdT busy", partner="tdt")] * 10
    watcher = PrefectureWatcher(world.deps(), Members(), max_attempts=3, retry_window=0)
    for _ in range(6):
        assert await watcher.run_once() == 0
    assert tdt.fetched == ["9001"] * 3  # three attempts, then never fetched again
    [letter] = [(t, v) for t, v in world.journal.published if t == DLQ]
    body = json.loads(letter[1] or b"")
    assert body["document_id"] == "9001" and body["type"] == "5"
    assert body["flow_id"] == FLOW
    [note] = decoded(world, NOTIFICATIONS)
    assert note["kind"] == "FAILED"
    assert note["state"] == "acknowledged"  # the acte's state does not change
    assert note["details"]["tdt_document_id"] == "9001"
    assert note["details"]["attempts"] == "3"
    assert note["reasons"][0]["code"] == "partner_transient"
    assert "referral to the tribunal administratif" in note["message"]
    [event] = decoded(world, FLOW_EVENTS.name)
    assert event["details"]["child_event"] == "prefecture-failed:9001"
    assert tdt.marked == []  # still unread at the TdT: a restarted worker tries again
    assert watcher.dead_lettered == 1


@pytest.mark.parametrize(
    "archive, code",
    [(bytes(4096), "partner_reply"), (gzip.compress(bytes(4096)), "partner_reply"),
     (b"<html>Erreur</html>", "partner_reply"),
     (pack_archive([("lettre.pdf", sample_pdf("x"))]), "partner_reply")],
    ids=["all-zero", "gzip-of-zeros", "html", "no-actes-xml"],
)
async def test_an_unusable_archive_is_never_an_empty_delivery(
    world: World, archive: bytes, code: str
) -> None:
    tdt = connector(world)
    tdt.documents = [ref("9002", "5")]
    tdt.archives["9002"] = archive
    watcher = PrefectureWatcher(world.deps(), Members())
    assert await watcher.run_once() == 0
    assert await watcher.run_once() == 0
    assert tdt.fetched == ["9002"]  # not retriable: dead-lettered at once
    [note] = decoded(world, NOTIFICATIONS)
    assert note["kind"] == "FAILED" and note["documents"] == []
    assert note["reasons"][0]["code"] == code
    assert len(published(world, DLQ)) == 1


async def test_a_transient_failure_is_retried_for_the_whole_window(world: World) -> None:
    tdt = connector(world)
    tdt.documents = [ref("9001", "5")]
    tdt.fetch_errors = [PartnerTransientError("TdT busy", partner="tdt")] * 10
    watcher = PrefectureWatcher(world.deps(), Members(), max_attempts=3, retry_window=3600)
    for _ in range(6):
        assert await watcher.run_once() == 0
    assert tdt.fetched == ["9001"] * 6  # past max_attempts, still inside the window
    assert published(world, DLQ) == [] and watcher.dead_lettered == 0


async def test_failing_storage_is_bounded_too(world: World) -> None:
    tdt = connector(world)
    tdt.documents = [ref("9003", "4")]
    tdt.archives["9003"] = letter_archive("4-1")
    world.blobs = FailingBlobs()
    watcher = PrefectureWatcher(world.deps(), Members(), max_attempts=2, retry_window=0)
    for _ in range(4):
        await watcher.run_once()
    assert tdt.fetched == ["9003", "9003"]
    [note] = decoded(world, NOTIFICATIONS)
    assert note["reasons"][0]["code"] == "infrastructure"
    assert len(published(world, DLQ)) == 1


async def test_a_failing_message_does_not_hold_the_others(world: World) -> None:
    tdt = connector(world)
    tdt.documents = [ref("9004", "4"), ref("9005", "4")]
    tdt.archives["9005"] = letter_archive("4-1")
    tdt.fetch_errors = [PartnerPermanentError("gone", partner="tdt")]
    watcher = PrefectureWatcher(world.deps(), Members())
    assert await watcher.run_once() == 1
    kinds = sorted(n["kind"] for n in decoded(world, NOTIFICATIONS))
    assert kinds == ["FAILED", "PARTNER_MESSAGE"]


async def test_a_message_for_an_unknown_transaction_waits(world: World) -> None:
    tdt = connector(world)
    tdt.documents = [PrefectureDocumentRef(id="9006", type="2", related_transaction_id="777")]
    watcher = PrefectureWatcher(world.deps(), Members(), max_attempts=1)
    for _ in range(3):
        assert await watcher.run_once() == 0
    assert tdt.fetched == [] and world.journal.published == []
