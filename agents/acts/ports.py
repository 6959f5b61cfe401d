"""What the acts stages need from the outside, as small Protocols.

The composition root passes the Kafka-backed adapters (``Publisher``,
``LinkIndex``, ``CompactedView``, ``TdtConnectors``, a blob store); unit tests
pass in-memory fakes with the same methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from datetime import date
from typing import Any, Protocol

from agents.acts.links import ActeLink
from connectors.tdt.models import (
    ActeForm,
    FileLike,
    PostResult,
    PrefectureDocumentRef,
    ReplyForm,
    StatusResult,
)
from relais.blobs.model import BlobRef
from relais.journal.entry import JournalEntry
from relais.members.model import Member
from relais.wire.headers import EventHeaders


class TdtConnector(Protocol):
    """The calls the acts stages make to one member's TdT account (the shared connector
    contract: ``connectors/tdt/s2low.py``)."""

    async def post_acte(self, form: ActeForm, files: Sequence[FileLike], *,
                        signature: FileLike | None = None) -> PostResult: ...

    async def find_acte(self, *, number: str, decision_date: date) -> str | None: ...

    async def get_status(self, transaction_id: str) -> StatusResult: ...

    async def get_stamped_acte(self, transaction_id: str) -> bytes: ...

    async def save_stamped_acte(
        self, transaction_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[BlobRef]]
    ) -> BlobRef: ...

    async def cancel(self, transaction_id: str) -> PostResult | str: ...

    async def post_reply(
        self, transaction_id: str, type_code: str, form: ReplyForm | None,
        files: Sequence[FileLike],
    ) -> PostResult | str: ...

    async def fetch_classification(self) -> bytes: ...

    async def list_prefecture_documents(self) -> list[PrefectureDocumentRef]: ...

    async def save_prefecture_document(
        self, document_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[BlobRef]]
    ) -> BlobRef:
        """The prefecture message's .tar.gz, streamed into ``store`` (``put_stream``)."""
        ...

    async def mark_prefecture_document_read(self, document_id: str) -> None: ...


class ConnectorRegistry(Protocol):
    def for_member(self, member: Member) -> TdtConnector: ...

    async def aclose(self) -> None: ...


class JournalPublisher(Protocol):
    """Publishes outside a stage's transaction; returns once the broker acknowledged."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(
        self, topic: str, *, key: str | bytes | None, schema_name: str,
        record: dict[str, Any], headers: EventHeaders,
    ) -> None: ...

    async def publish_raw(
        self, topic: str, *, key: str | bytes | None, value: bytes | None,
        headers: EventHeaders | list[tuple[str, bytes]],
    ) -> None: ...


class LinksView(Protocol):
    """The delivery journal as the acts stages read it (``relais.journal.deliveries``,
    acte entries: :class:`agents.acts.links.LinkIndex`)."""

    def get(self, flow_id: str) -> ActeLink | None: ...

    def put_local(self, link: ActeLink) -> None: ...

    def flow_of_id_acte(self, siren: str, id_acte: str) -> str | None: ...

    def flow_of_transaction(self, tdt_url: str, transaction_id: str) -> str | None: ...

    def signature_of(self, flow_id: str) -> JournalEntry | None:
        """The flow's i-Parapheur journal entry (a signed acte's signature), or None."""
        ...


class SnapshotView(Protocol):
    """The kept classification snapshots, by SIREN."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put_local(self, key: str, value: dict[str, Any] | None) -> None: ...


class Blobs(Protocol):
    """The part of the blob store the acts stages use."""

    async def put_bytes(
        self, data: bytes, *, media_type: str, filename: str,
        expected_sha256: str | None = None, max_bytes: int | None = None,
        owner: str | None = None,
    ) -> BlobRef: ...

    async def put_stream(
        self, chunks: AsyncIterable[bytes], *, media_type: str, filename: str,
        expected_sha256: str | None = None, max_bytes: int | None = None,
        owner: str | None = None,
    ) -> BlobRef: ...

    def open(self, sha256: str) -> AsyncIterator[bytes]: ...

    async def stat(self, sha256: str) -> int | None: ...


def transaction_id_of(result: PostResult | str) -> str:
    """The new transaction's id, whether the connector answers a result or the bare id."""
    return result if isinstance(result, str) else result.transaction_id
