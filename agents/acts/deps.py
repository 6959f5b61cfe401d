"""What the acts stages share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agents.acts.ports import Blobs, ConnectorRegistry, JournalPublisher, LinksView, SnapshotView
from relais.errors import UnknownMemberError
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


@dataclass
class ActsDeps:
    codec: AvroCodec
    members: Members
    blobs: Blobs
    #: The acts' view of the delivery journal (``agents/acts/links.py``).
    links: LinksView
    classifications: SnapshotView
    connectors: ConnectorRegistry
    #: Publishes outside a stage's transaction, acknowledged (journal intents, ...).
    journal: JournalPublisher
    max_acte_bytes: int = 150 * 1024 * 1024
    poll_schedule: tuple[str, ...] = ("5s", "30s", "2m", "10m", "1h")
    #: Attempts at fetching the stamped acte (one per poll tier) before telling the
    #: member that no stamped copy is available (doubled for transient TdT failures).
    stamp_attempts: int = 5

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member
