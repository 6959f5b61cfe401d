"""Shared by the SEDA conformance tests: an in-memory blob store and a spec maker."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from relais.seda.model import SedaVersion
from relais.seda.package import TransferSpec, UnitSpec

SEDA_REFERENCE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "seda"


class MemoryBlobs:
    """Blobs by SHA-256, served in small chunks as the real store does."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.opened = 0

    def add(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        self.data[digest] = content
        return digest

    async def _chunks(self, sha256: str) -> AsyncIterator[bytes]:
        self.opened += 1
        content = self.data[sha256]
        for start in range(0, len(content), 4096):
            yield content[start:start + 4096]

    def open(self, sha256: str) -> AsyncIterator[bytes]:
        return self._chunks(sha256)


def spec(version: SedaVersion, units: tuple[UnitSpec, ...], message_id: str = "MSG-1"
         ) -> TransferSpec:
    return TransferSpec(
        version=version, message_identifier=message_id, archival_agency="Vitam",
        transferring_agency="RELAIS", originating_agency="212102313", units=units,
        archival_agreement="IC-000001",
    )
