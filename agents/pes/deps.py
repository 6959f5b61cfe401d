"""What the PES stages share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from relais.errors import UnknownMemberError
from relais.members.model import Member
from relais.pes.xml_safe import PesLimits
from relais.wire.avro_codec import AvroCodec

#: The TdT account option (``relais members add --account-option tdt.pes_signature_required=true``)
#: saying that the member's PES_Aller files must be signed.
SIGNATURE_OPTION = "pes_signature_required"


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


class Blobs(Protocol):
    def open(self, sha256: str) -> AsyncIterator[bytes]: ...

    async def stat(self, sha256: str) -> int | None: ...


@dataclass
class PesDeps:
    codec: AvroCodec
    members: Members
    blobs: Blobs
    limits: PesLimits = field(default_factory=PesLimits)

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member
