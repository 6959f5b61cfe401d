"""Building and publishing submissions the way a member's back-office does.

Used by ``relais submit``, the demo and the tests; a real back-office does the
same with any Kafka client: upload documents, then publish an Avro
``ActeSubmission`` to ``relais.member.<siren>.submissions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import anyio

from relais.blobs.model import BlobRef
from relais.blobs.sniff import sniff_media_type
from relais.blobs.store import BlobStore
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.wire.headers import EventHeaders
from topics import member as member_topics

CHUNK = 1024 * 1024


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(CHUNK):
            yield chunk


async def upload_file(
    store: BlobStore, path: Path, media_type: str | None = None, *, owner: str | None = None
) -> BlobRef:
    """Stream a local file into the blob store, owned by ``owner`` (the member that will
    reference it: the ingress refuses a blob the member does not own)."""
    with path.open("rb") as handle:
        head = handle.read(16)
    kind = media_type or sniff_media_type(head) or "application/octet-stream"
    return await store.put_stream(_file_chunks(path), media_type=kind, filename=path.name,
                                  owner=owner)


@dataclass(frozen=True)
class ActeDraft:
    """The fields of an acte submission, as a back-office fills them."""

    submission_id: str
    member_siren: str
    nature_code: int
    matieres: tuple[int, ...]
    numero_interne: str
    decision_date: date
    objet: str
    document: BlobRef
    document_typology: str | None = None
    annexes: tuple[tuple[BlobRef, str | None], ...] = field(default_factory=tuple)
    document_papier: bool = False
    classification_date: date | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "member_siren": self.member_siren,
            "nature_code": self.nature_code,
            "matieres": list(self.matieres),
            "numero_interne": self.numero_interne,
            "decision_date": self.decision_date,
            "objet": self.objet,
            "document": {"blob": self.document.to_dict(), "typology": self.document_typology},
            "annexes": [
                {"blob": blob.to_dict(), "typology": typology} for blob, typology in self.annexes
            ],
            "document_papier": self.document_papier,
            "classification_date": self.classification_date,
        }


def submission_headers(publisher: Publisher, siren: str, submission_id: str) -> EventHeaders:
    return EventHeaders.new(
        source=f"/members/{siren}/back-office",
        type="fr.relais.acts.ActeSubmission",
        subject=submission_id,
        flow_id=None,
        dataschema=dataschema_uri(publisher.codec, "ActeSubmission"),
    )


async def publish_acte(publisher: Publisher, draft: ActeDraft) -> None:
    """Publish an acte submission on its member's submissions topic."""
    await publisher.publish(
        member_topics.submissions(draft.member_siren).name,
        key=draft.submission_id,
        schema_name="ActeSubmission",
        record=draft.to_record(),
        headers=submission_headers(publisher, draft.member_siren, draft.submission_id),
    )


async def publish_raw(publisher: Publisher, siren: str, key: str, value: bytes) -> None:
    """Publish arbitrary bytes on a member's submissions topic (what a buggy client does)."""
    await publisher.publish_raw(
        member_topics.submissions(siren).name,
        key=key,
        value=value,
        headers=EventHeaders.new(
            source=f"/members/{siren}/back-office", type="unknown", subject=key, flow_id=None
        ),
    )
