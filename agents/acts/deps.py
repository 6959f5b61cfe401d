"""What the acts stages share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from agents.acts.ports import Blobs, ConnectorRegistry, JournalPublisher, LinksView, SnapshotView
from relais.errors import UnknownMemberError
from relais.members.model import Member
from relais.registry.cache import CacheEntry
from relais.wire.avro_codec import AvroCodec


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


class CachedAnswers(Protocol):
    """The worker's view of the hub-wide registry cache (``RegistryCache``): local, no call."""

    def get(self, registry: str, identifier: str, now: float) -> CacheEntry | None: ...


#: Delay tiers a contract waits on, one per parking, for its contractors' answers (about
#: 15 minutes in all) before it is refused as unverified (``RELAIS_CONTRACTOR_WAIT_TIERS``).
CONTRACTOR_WAIT_TIERS = ("5s", "5s", "30s", "30s", "2m", "2m", "5m", "5m")


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
    #: The registry cache's view, for contracts of members who refuse closed contractors
    #: (``agents/acts/contractors.py``); None: nothing cached (every contractor unknown yet).
    registry_cache: CachedAnswers | None = None
    #: Whether this hub can ask Sirene (a contract whose contractors it cannot check is
    #: refused at once rather than parked).
    registry_configured: bool = False
    contractor_wait_tiers: tuple[str, ...] = CONTRACTOR_WAIT_TIERS
    clock: Callable[[], float] = field(default=time.time)

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member
