"""What the archive stages share, as Protocols where tests put fakes."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.archive.vitam import FoundOperation, OperationState
from relais.errors import UnknownMemberError
from relais.journal.deliver import AckedPublisher
from relais.journal.entry import JournalEntry
from relais.members.model import Member
from relais.seda.reply import SedaReply
from relais.wire.avro_codec import AvroCodec

#: The journal keys an archive flow is found by: its transfer's MessageIdentifier.
JOURNAL_KEYS: dict[str, tuple[str, ...]] = {"archive": ("message_identifier",)}


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


class JournalLookup(Protocol):
    def get(self, flow_id: str) -> JournalEntry | None: ...

    def put_local(self, entry: JournalEntry) -> None: ...


class Blobs(Protocol):
    def open(self, sha256: str) -> AsyncIterator[bytes]: ...

    async def stat(self, sha256: str) -> int | None: ...

    async def put_bytes(self, data: bytes, *, media_type: str, filename: str,
                        owner: str | None = ...) -> Any: ...

    async def put_stream(self, chunks: AsyncIterable[bytes], *, media_type: str,
                         filename: str, owner: str | None = ...) -> Any: ...


class Archive(Protocol):
    """One member's archive (:class:`connectors.archive.vitam.VitamConnector`)."""

    @property
    def settings(self) -> Any: ...

    async def upload(self, sip: AsyncIterator[bytes], length: int, *,
                     message_identifier: str) -> str: ...

    async def operation(self, operation_id: str) -> OperationState: ...

    async def transfer_reply(self, operation_id: str) -> SedaReply | None: ...

    async def find_operation(self, message_identifier: str) -> FoundOperation | None: ...


class Archives(Protocol):
    def for_member(self, member: Member) -> Archive: ...


class Dossiers(Protocol):
    """The acte submissions by acte flow id (``relais.archive.dossiers``)."""

    def get(self, flow_id: str) -> dict[str, Any] | None: ...


@dataclass
class ArchiveDeps:
    codec: AvroCodec
    members: Members
    blobs: Blobs
    journal: JournalLookup
    publisher: AckedPublisher
    archives: Archives
    dossiers: Dossiers | None = None
    poll_schedule: tuple[str, ...] = ("5s",)
    #: Polls of one operation before it is reported as never completing.
    max_polls: int = 200
    extra: dict[str, Any] = field(default_factory=dict)

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member
