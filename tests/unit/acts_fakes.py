"""In-memory fakes of what the acts stages need (``agents/acts/ports.py``), for unit tests."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from agents.acts.deps import ActsDeps
from agents.acts.links import ActeLink
from connectors.tdt.models import (
    ActeForm,
    FileLike,
    PostResult,
    PrefectureDocumentRef,
    ReplyForm,
    StatusResult,
)
from relais.api.auth import hash_token
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.journal.entry import JournalEntry
from relais.members.model import Member, TdtSettings
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS
from topics.journal import DELIVERY_JOURNAL

SIREN = "217500016"
TDT_URL = "https://tdt.example.org"
PDF = b"%PDF-1.4\n% a test acte\n"
CLASSIFICATION_DATE = date(2026, 1, 15)


ACTES_NS = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216"


def classification_xml(on: date = CLASSIFICATION_DATE) -> bytes:
    """A small 7-2 RetourClassification: nature 1 (DE, typology 99_DE), matière 1.1."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<actes:RetourClassification xmlns:actes="{ACTES_NS}">
  <actes:DateClassification>{on.isoformat()}</actes:DateClassification>
  <actes:NaturesActes>
    <actes:NatureActe actes:CodeNatureActe="1" actes:Libelle="Deliberations"
        actes:TypeAbrege="DE">
      <actes:TypePJNatureActe actes:CodeTypePJ="99_DE" actes:Libelle="Autre"/>
    </actes:NatureActe>
  </actes:NaturesActes>
  <actes:Matieres>
    <actes:Matiere1 actes:CodeMatiere="1" actes:Libelle="Commande publique">
      <actes:Matiere2 actes:CodeMatiere="1" actes:Libelle="Marches publics"/>
    </actes:Matiere1>
  </actes:Matieres>
</actes:RetourClassification>""".encode()


def unchanged_xml(on: date = CLASSIFICATION_DATE) -> bytes:
    """A 7-3 ReponseClassificationSansChangement."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<actes:ReponseClassificationSansChangement xmlns:actes="{ACTES_NS}">
  <actes:DateClassification>{on.isoformat()}</actes:DateClassification>
</actes:ReponseClassificationSansChangement>""".encode()


def member() -> Member:
    return Member(
        siren=SIREN, name="Commune de test", department="021",
        token_sha256=hash_token("token"), registered_at=datetime(2026, 1, 1, tzinfo=UTC),
        tdt=TdtSettings(url=TDT_URL, login="test", password_env="TDT_PASSWORD_TEST"),
    )


class FakeConnector:
    """A TdT account: answers what the test sets, records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.signatures: list[FileLike | None] = []
        self.post_error: Exception | None = None
        self.posted_id = "4242"
        self.find_answer: str | None = None
        self.find_answers: list[str | None] = []  # one per call, before find_answer
        self.find_error: Exception | None = None
        self.statuses: list[int] = []
        self.status_document: bytes | None = None
        self.stamped: bytes | None = None
        self.stamp_error: Exception | None = None
        self.cancel_error: Exception | None = None
        self.reply_error: Exception | None = None
        self.classification_xml = classification_xml()

    def called(self, name: str) -> list[Any]:
        return [args for called, args in self.calls if called == name]

    async def post_acte(self, form: ActeForm, files: Sequence[FileLike], *,
                        signature: FileLike | None = None) -> PostResult:
        self.calls.append(("post_acte", form))
        self.signatures.append(signature)
        if self.post_error is not None:
            raise self.post_error
        return PostResult(partner="tdt", transaction_id=self.posted_id, http_status=200,
                          elapsed=0.01, raw=f"OK\n{self.posted_id}\n\n".encode())

    async def find_acte(self, *, number: str, decision_date: date) -> str | None:
        self.calls.append(("find_acte", (number, decision_date)))
        if self.find_error is not None:
            raise self.find_error
        if self.find_answers:
            return self.find_answers.pop(0)
        return self.find_answer

    async def get_status(self, transaction_id: str) -> StatusResult:
        self.calls.append(("get_status", transaction_id))
        status = self.statuses.pop(0)
        return StatusResult(partner="tdt", transaction_id=transaction_id, status=status,
                            http_status=200, elapsed=0.01, raw=b"OK\n%d\n" % status,
                            document=self.status_document if status == 4 else None)

    async def get_stamped_acte(self, transaction_id: str) -> bytes:
        self.calls.append(("get_stamped_acte", transaction_id))
        if self.stamp_error is not None:
            raise self.stamp_error
        assert self.stamped is not None
        return self.stamped

    async def save_stamped_acte(
        self, transaction_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[BlobRef]]
    ) -> BlobRef:
        """As the real connector: the stamped PDF handed to ``store`` in chunks."""
        pdf = await self.get_stamped_acte(transaction_id)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(pdf), 4096):
                yield pdf[start:start + 4096]

        return await store(chunks())

    async def cancel(self, transaction_id: str) -> str:
        self.calls.append(("cancel", transaction_id))
        if self.cancel_error is not None:
            raise self.cancel_error
        return "5001"

    async def post_reply(
        self, transaction_id: str, type_code: str, form: ReplyForm | None,
        files: Sequence[FileLike],
    ) -> PostResult:
        self.calls.append(("post_reply", (transaction_id, type_code)))
        if self.reply_error is not None:
            raise self.reply_error
        return PostResult(partner="tdt", transaction_id="6001", http_status=200, elapsed=0.01,
                          raw=b"OK\n6001\n\n")

    async def fetch_classification(self) -> bytes:
        self.calls.append(("fetch_classification", None))
        return self.classification_xml

    async def list_prefecture_documents(self) -> list[PrefectureDocumentRef]:
        return []

    async def save_prefecture_document(
        self, document_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[BlobRef]]
    ) -> BlobRef:
        raise AssertionError("not used by these stages")

    async def mark_prefecture_document_read(self, document_id: str) -> None:
        raise AssertionError("not used by these stages")


class FakeConnectors:
    def __init__(self, connector: FakeConnector) -> None:
        self.connector = connector

    def for_member(self, member: Member) -> FakeConnector:
        return self.connector

    async def aclose(self) -> None:
        return None


@dataclass
class FakeJournal:
    published: list[tuple[str, Any]] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, topic: str, *, key: Any, schema_name: str,
                      record: dict[str, Any], headers: Any) -> None:
        self.published.append((topic, record))

    async def publish_raw(self, topic: str, *, key: Any, value: bytes | None,
                          headers: Any) -> None:
        self.published.append((topic, value))


class FakeLinks:
    def __init__(self) -> None:
        self.links: dict[str, ActeLink] = {}
        self.signatures: dict[str, JournalEntry] = {}

    def signature_of(self, flow_id: str) -> JournalEntry | None:
        return self.signatures.get(flow_id)

    def get(self, flow_id: str) -> ActeLink | None:
        return self.links.get(flow_id)

    def put_local(self, link: ActeLink) -> None:
        self.links[link.flow_id] = link

    def flow_of_id_acte(self, siren: str, id_acte: str) -> str | None:
        for link in self.links.values():
            if (link.member_siren, link.id_acte) == (siren, id_acte) \
                    and link.delivery != "REFUSED":
                return link.flow_id
        return None

    def flow_of_transaction(self, tdt_url: str, transaction_id: str) -> str | None:
        for link in self.links.values():
            if (link.tdt_url, link.transaction_id) == (tdt_url, transaction_id):
                return link.flow_id
        return None


class FakeSnapshots:
    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.snapshots.get(key)

    def put_local(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.snapshots.pop(key, None)
        else:
            self.snapshots[key] = value


class FakeBlobs:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.owners: dict[str, set[str]] = {}
        self.puts = 0
        self.stream_puts = 0

    def add(self, content: bytes, filename: str, media_type: str = "application/pdf") -> dict[
            str, Any]:
        digest = hashlib.sha256(content).hexdigest()
        self.blobs[digest] = content
        return {"sha256": digest, "size": len(content), "media_type": media_type,
                "filename": filename}

    async def put_bytes(self, data: bytes, *, media_type: str, filename: str,
                        expected_sha256: str | None = None,
                        max_bytes: int | None = None, owner: str | None = None) -> BlobRef:
        self.puts += 1
        if owner is not None:
            self.owners.setdefault(hashlib.sha256(data).hexdigest(), set()).add(owner)
        ref = self.add(data, filename, media_type)
        return BlobRef(**ref)

    async def put_stream(self, chunks: AsyncIterable[bytes], *, media_type: str,
                         filename: str, expected_sha256: str | None = None,
                         max_bytes: int | None = None, owner: str | None = None) -> BlobRef:
        self.stream_puts += 1
        data = b"".join([bytes(chunk) async for chunk in chunks])
        return await self.put_bytes(data, media_type=media_type, filename=filename,
                                    expected_sha256=expected_sha256, max_bytes=max_bytes,
                                    owner=owner)

    async def _chunks(self, sha256: str) -> AsyncIterator[bytes]:
        yield self.blobs[sha256]

    def open(self, sha256: str) -> AsyncIterator[bytes]:
        return self._chunks(sha256)

    async def stat(self, sha256: str) -> int | None:
        content = self.blobs.get(sha256)
        return None if content is None else len(content)


@dataclass
class FakeRecord:
    """A consumed record (the stage's ``InputRecord``)."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0
    timestamp: int = 0
    headers: Sequence[tuple[str, bytes]] = ()


class DictMembers:
    def __init__(self, *members: Member) -> None:
        self.members = {m.siren: m for m in members}

    def get(self, siren: str) -> Member | None:
        return self.members.get(siren)


@dataclass
class World:
    """One member, its TdT and every store, wired into an ActsDeps."""

    codec: AvroCodec
    connector: FakeConnector = field(default_factory=FakeConnector)
    journal: FakeJournal = field(default_factory=FakeJournal)
    links: FakeLinks = field(default_factory=FakeLinks)
    snapshots: FakeSnapshots = field(default_factory=FakeSnapshots)
    blobs: FakeBlobs = field(default_factory=FakeBlobs)

    def deps(self, **overrides: Any) -> ActsDeps:
        given: dict[str, Any] = {
            "codec": self.codec, "members": DictMembers(member()), "blobs": self.blobs,
            "links": self.links, "classifications": self.snapshots,
            "connectors": FakeConnectors(self.connector), "journal": self.journal,
            "poll_schedule": ("5s", "30s", "2m", "10m", "1h"),
        }
        return ActsDeps(**{**given, **overrides})

    def keep_classification(self) -> None:
        self.snapshots.put_local(SIREN, {
            "member_siren": SIREN, "date_version": CLASSIFICATION_DATE,
            "xml": classification_xml(),
            "fetched_at": datetime(2026, 1, 16, tzinfo=UTC),
        })


def submission(submission_id: str = "sub-1", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "submission_id": submission_id, "member_siren": SIREN, "nature_code": 1,
        "matieres": [1, 1], "numero_interne": "D2026_042",
        "decision_date": date(2026, 3, 2), "objet": "Budget primitif 2026",
        "document": {"blob": {"sha256": "0" * 64, "size": 1, "media_type": "application/pdf",
                              "filename": "deliberation.pdf"}, "typology": None},
        "annexes": [], "document_papier": False, "classification_date": None,
    }
    record.update(changes)
    return record


def record_of(codec: AvroCodec, schema: str, value: dict[str, Any], topic: str,
              flow_id: str, **headers: str) -> FakeRecord:
    all_headers = {FLOW_ID_HEADER: flow_id, h.MEMBER: SIREN, **headers}
    return FakeRecord(topic=topic, value=codec.encode(schema, value), key=flow_id.encode(),
                      headers=tuple((k, v.encode()) for k, v in all_headers.items()))


def flow_of(submission_id: str) -> str:
    return flow_id_for(SIREN, submission_id)


def decoded(codec: AvroCodec, outputs: list[Outbound], topic: str) -> list[dict[str, Any]]:
    return [codec.decode(out.value or b"").record for out in outputs if out.topic == topic]


def notifications(codec: AvroCodec, outputs: list[Outbound]) -> list[dict[str, Any]]:
    return decoded(codec, outputs, member_topics.notifications(SIREN).name)


def flow_events(codec: AvroCodec, outputs: list[Outbound]) -> list[dict[str, Any]]:
    return decoded(codec, outputs, FLOW_EVENTS.name)


def links_out(codec: AvroCodec, outputs: list[Outbound]) -> list[dict[str, Any]]:
    """The journal entries among ``outputs``, read as acte links (``delivery``,
    ``transaction_id``, ``tdt_url``, ...)."""
    return [asdict(ActeLink.of(JournalEntry.from_record(record)))
            for record in decoded(codec, outputs, DELIVERY_JOURNAL.name)]


def journal_published(world: World) -> list[ActeLink]:
    """The journal entries published outside the stage transaction (the intents)."""
    return [ActeLink.of(JournalEntry.from_record(record))
            for topic, record in world.journal.published if topic == DELIVERY_JOURNAL.name]
