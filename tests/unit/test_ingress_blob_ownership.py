"""Issue 13, F4: a member references only blobs it uploaded (real filesystem store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from agents.ingress.handler import IngressCounters, IngressDeps, handle_submission
from hub.flows import FLOWS
from relais.api.auth import hash_token
from relais.blobs.filesystem import FilesystemBlobStore
from relais.blobs.model import BlobRef
from relais.flows.kit import routes_of
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics

SIREN_A = "213300010"
SIREN_B = "200054807"
PDF = b"%PDF-1.4\n% the acte of member A\n"


@dataclass
class Record:
    topic: str
    value: bytes
    key: bytes = b"sub-1"
    partition: int = 0
    offset: int = 7
    timestamp: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Members:
    def get(self, siren: str) -> Member | None:
        if siren not in (SIREN_A, SIREN_B):
            return None
        return Member(siren=siren, name=f"Commune {siren}", department="021",
                      token_sha256=hash_token(siren),
                      registered_at=datetime(2026, 1, 1, tzinfo=UTC))


def acte(siren: str, blob: BlobRef) -> dict[str, Any]:
    return {
        "submission_id": "sub-1", "member_siren": siren, "nature_code": 1, "matieres": [7, 1],
        "numero_interne": "DE2026_001", "decision_date": date(2026, 3, 2),
        "objet": "Budget primitif", "document": {"blob": blob.to_dict(), "typology": None},
        "annexes": [], "document_papier": False, "classification_date": None,
    }


async def notification(store: FilesystemBlobStore, siren: str, blob: BlobRef) -> dict[str, Any]:
    codec = AvroCodec()
    deps = IngressDeps(codec=codec, members=Members(), blobs=store,
                       max_submission_bytes=65536, counters=IngressCounters(),
                       routes=routes_of(FLOWS))
    record = Record(member_topics.submissions(siren).name,
                    codec.encode("ActeSubmission", acte(siren, blob)))
    outputs = await handle_submission(record, deps)
    notifications = [codec.decode(out.value or b"").record for out in outputs
                     if out.topic == member_topics.notifications(siren).name]
    assert len(notifications) == 1
    return notifications[0]


async def test_b_referencing_a_blob_of_a_is_rejected_blob_not_owned(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    blob = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf",
                                 owner=SIREN_A)
    refused = await notification(store, SIREN_B, blob)
    assert refused["kind"] == "REJECTED"
    assert [(r["field"], r["code"]) for r in refused["reasons"]] == [
        ("document.blob.sha256", "blob_not_owned")
    ]
    accepted = await notification(store, SIREN_A, blob)
    assert accepted["kind"] == "ACCEPTED"


async def test_a_blob_without_owner_is_nobody_s(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    blob = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    refused = await notification(store, SIREN_A, blob)
    assert [r["code"] for r in refused["reasons"]] == ["blob_not_owned"]
    await store.grant(blob.sha256, SIREN_A)
    assert (await notification(store, SIREN_A, blob))["kind"] == "ACCEPTED"


async def test_a_missing_blob_is_still_blob_not_found(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    ghost = BlobRef(sha256="0" * 64, size=3, media_type="application/pdf", filename="g.pdf")
    refused = await notification(store, SIREN_A, ghost)
    assert [r["code"] for r in refused["reasons"]] == ["blob_not_found"]
