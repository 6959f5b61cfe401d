"""What the signature stages share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from agents.signature.collect import Blobs as CollectBlobs
from connectors.iparapheur.models import CreateOutcome, DossierRequest, DossierStatus, SignedDossier
from relais.errors import UnknownMemberError
from relais.journal.deliver import AckedPublisher
from relais.journal.entry import JournalEntry
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


class Parapheur(Protocol):
    """The calls the signature stages make to one member's i-Parapheur account
    (:class:`connectors.iparapheur.IParapheurConnector`)."""

    async def create_dossier(self, request: DossierRequest) -> CreateOutcome: ...
    async def find_dossiers(self, dossier_ids: list[str]) -> dict[str, DossierStatus]: ...
    async def get_status(self, dossier_id: str) -> DossierStatus: ...
    async def get_signed(self, dossier_id: str) -> SignedDossier: ...
    async def archive(self, dossier_id: str, *, action: str = "EFFACER") -> str | None: ...
    async def delete_rejected(self, dossier_id: str) -> None: ...


class Parapheurs(Protocol):
    def for_member(self, member: Member) -> Parapheur: ...


class JournalReader(Protocol):
    """The delivery journal (:class:`relais.journal.view.JournalView`)."""

    def get(self, flow_id: str, partner: str | None = None) -> JournalEntry | None: ...
    def put_local(self, entry: JournalEntry) -> None: ...


class Blobs(CollectBlobs, Protocol):
    def open(self, sha256: str) -> AsyncIterator[bytes]: ...


@dataclass
class SignatureDeps:
    codec: AvroCodec
    members: Members
    blobs: Blobs
    journal_view: JournalReader
    #: Publishes outside a stage's transaction, acknowledged (journal intents and results).
    journal: AckedPublisher
    connectors: Parapheurs
    poll_schedule: tuple[str, ...] = ("5s", "30s", "2m", "10m", "1h")
    max_acte_bytes: int = 150 * 1024 * 1024

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member
