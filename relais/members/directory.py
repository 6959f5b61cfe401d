"""The member directory: the compacted registry topic as a global table.

Every hub process holds one. ``start`` returns once every member registered
before the process started is known; a member added later is live within about
a second, without a restart.
"""

from __future__ import annotations

import hmac

from relais.api.auth import hash_token
from relais.kafka.compacted_view import CompactedView
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import MEMBERS


class MemberDirectory:
    """An in-memory view of every member, kept up to date from the registry topic."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        self._by_token: dict[str, str] = {}
        self._view: CompactedView[Member] = CompactedView(
            bootstrap_servers, codec, topic=MEMBERS.name, schema_name="Member",
            parse=Member.from_record, on_change=self._index,
        )
        self.ready = self._view.ready

    def _index(self, siren: str, member: Member | None) -> None:
        for digest, owner in list(self._by_token.items()):
            if owner == siren:
                del self._by_token[digest]
        if member is not None and member.active:
            self._by_token[member.token_sha256] = siren

    def get(self, siren: str) -> Member | None:
        """The member with this SIREN, or None (also for a deactivated member)."""
        member = self._view.get(siren)
        return member if member is not None and member.active else None

    def all(self) -> list[Member]:
        return sorted(self._view.values(), key=lambda m: m.siren)

    def __len__(self) -> int:
        return len(self._view)

    async def authenticate(self, token: str) -> str | None:
        """The SIREN of the active member whose token this is, or None."""
        digest = hash_token(token)
        siren = self._by_token.get(digest)
        if siren is None:
            return None
        member = self.get(siren)
        if member is None or not hmac.compare_digest(member.token_sha256, digest):
            return None
        return siren

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one registry record (a tombstone removes the member)."""
        self._view.apply(key, value)

    async def start(self, timeout: float = 60.0) -> None:
        await self._view.start(timeout)

    async def stop(self) -> None:
        await self._view.stop()
