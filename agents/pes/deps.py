"""What the PES stages share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from connectors.tdt.helios import HeliosConnector
from relais.blobs.model import BlobRef
from relais.errors import UnknownMemberError
from relais.journal.deliver import AckedPublisher
from relais.journal.entry import JournalEntry
from relais.members.model import Member
from relais.pes.xml_safe import PesLimits
from relais.wire.avro_codec import AvroCodec

#: The TdT account option (``relais members add --account-option tdt.pes_signature_required=true``)
#: saying that the member's PES_Aller files must be signed.
SIGNATURE_OPTION = "pes_signature_required"

#: The journal keys a PES flow is found by: the PES_Aller's content digest (its blob's
#: SHA-256) and its NomFic, per member.
JOURNAL_KEYS: dict[str, tuple[str, ...]] = {"pes": ("sha256", "nom_fic")}


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


class JournalLookup(Protocol):
    """The delivery journal as the PES stages read it (:class:`relais.journal.view.JournalView`)."""

    def get(self, flow_id: str) -> JournalEntry | None: ...

    def put_local(self, entry: JournalEntry) -> None: ...

    def flow_of(self, member_siren: str, key_name: str, value: str) -> str | None: ...

    def entries(self) -> list[JournalEntry]: ...


class HeliosAccounts(Protocol):
    """One Hélios connector per member TdT account
    (:class:`connectors.tdt.helios.HeliosConnectors`)."""

    def for_member(self, member: Member) -> HeliosConnector: ...


class Blobs(Protocol):
    async def put_bytes(
        self, data: bytes, *, media_type: str, filename: str,
        expected_sha256: str | None = None, max_bytes: int | None = None,
        owner: str | None = None,
    ) -> BlobRef: ...

    def open(self, sha256: str) -> AsyncIterator[bytes]: ...

    async def stat(self, sha256: str) -> int | None: ...


@dataclass
class PesDeps:
    codec: AvroCodec
    members: Members
    blobs: Blobs
    journal: JournalLookup
    limits: PesLimits = field(default_factory=PesLimits)
    connectors: HeliosAccounts | None = None
    #: The journal publisher (acknowledged writes outside the stage's transaction).
    publisher: AckedPublisher | None = None
    #: How many transaction ids :meth:`HeliosConnector.find_pes` walks when reconciling.
    find_window: int = 200
    poll_schedule: tuple[str, ...] = ("5s", "30s", "2m", "10m", "1h")

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member
