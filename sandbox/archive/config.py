"""The sandbox archive's settings and fault knobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from relais.errors import ConfigurationError
from sandbox.common.faults import TransportFaults


@dataclass(frozen=True)
class ArchiveFaults(TransportFaults):
    """Transport knobs plus the archive's own.

    ``fatal_rate``: the operation stops PAUSE/FATAL (a worker crash in Vitam); no ATR is
    ever written and an administrator must act. ``processing_seconds``: how long an
    operation runs on the sandbox's clock before it completes (Vitam answers 202 at once,
    checks later). ``tamper_rate``: the first object's stored content differs from what
    was sent by one byte (corruption in transit or at rest): the digest check fails.
    """

    RATES: ClassVar[tuple[str, ...]] = (*TransportFaults.RATES, "fatal_rate", "tamper_rate")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = (*TransportFaults.NON_NEGATIVE,
                                               "processing_seconds")

    fatal_rate: float = 0.0
    tamper_rate: float = 0.0
    processing_seconds: float = 0.0


@dataclass(frozen=True)
class ArchiveConfig:
    """What the sandbox accepts: tenants, contexts (workflows), limits of a SIP, and the
    applications whose TLS client certificate (CN) it serves when run over TLS (Vitam
    authenticates an application by its certificate)."""

    applications: tuple[str, ...] = ("relais",)
    tenants: tuple[int, ...] = (0, 1, 2)
    contexts: tuple[str, ...] = ("DEFAULT_WORKFLOW", "HOLDING_SCHEME", "FILING_SCHEME")
    max_sip_bytes: int = 2 * 1024**3
    max_entries: int = 10_000
    max_entry_bytes: int = 1024**3
    max_manifest_bytes: int = 64 * 1024 * 1024
    seed: int = 1
    faults: ArchiveFaults = ArchiveFaults()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ArchiveConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"sandbox archive: unknown settings {', '.join(unknown)}")
        values = dict(data)
        if "faults" in values:
            values["faults"] = ArchiveFaults().updated(values["faults"])
        for name in ("tenants", "contexts", "applications"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)
