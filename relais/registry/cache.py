"""The hub-wide registry cache: entries, their expiry per kind of answer, and a local view.

Every worker keeps a :class:`RegistryCache` filled from one compacted topic (key
``<registry>:<number>``, value :func:`encode_entry`, a tombstone deletes), so the same
number is asked once whichever worker asks. Expiry is checked on read; the owner of a
registry (docs/registries.md) writes entries and tombstones. "Not found" is cached too
(negative caching), for less time: a new company may be registered tomorrow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relais.errors import ValueDecodeError

MAX_ENTRY_BYTES = 16 * 1024
HOUR = 3600.0
DAY = 24 * HOUR


class Outcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    NOT_DIFFUSIBLE = "not_diffusible"


@dataclass(frozen=True)
class CachePolicy:
    """Seconds an answer stays valid, per kind of answer (Sirene is updated daily)."""

    found_active: float = DAY
    found_closed: float = 7 * DAY  # a closed establishment rarely reopens
    not_found: float = HOUR
    not_diffusible: float = DAY

    def ttl(self, outcome: Outcome, active: bool | None) -> float:
        if outcome is Outcome.NOT_FOUND:
            return self.not_found
        if outcome is Outcome.NOT_DIFFUSIBLE:
            return self.not_diffusible
        return self.found_closed if active is False else self.found_active


def cache_key(registry: str, identifier: str) -> str:
    return f"{registry}:{identifier}"


@dataclass(frozen=True)
class CacheEntry:
    registry: str
    identifier: str
    outcome: Outcome
    stored_at: float
    expires_at: float
    active: bool | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return cache_key(self.registry, self.identifier)

    def fresh(self, now: float) -> bool:
        return now < self.expires_at


def make_entry(
    registry: str,
    identifier: str,
    outcome: Outcome,
    now: float,
    *,
    active: bool | None = None,
    payload: Mapping[str, Any] | None = None,
    policy: CachePolicy | None = None,
) -> CacheEntry:
    ttl = (policy or CachePolicy()).ttl(outcome, active)
    return CacheEntry(registry, identifier, outcome, now, now + ttl, active, dict(payload or {}))


def encode_entry(entry: CacheEntry) -> bytes:
    data = json.dumps(
        {
            "registry": entry.registry,
            "identifier": entry.identifier,
            "outcome": entry.outcome.value,
            "stored_at": entry.stored_at,
            "expires_at": entry.expires_at,
            "active": entry.active,
            "payload": dict(entry.payload),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(f"cache entry {entry.key} is {len(data)} bytes (max {MAX_ENTRY_BYTES})")
    return data


def decode_entry(raw: bytes) -> CacheEntry:
    """An entry read from the cache topic; ValueDecodeError for anything else."""
    if len(raw) > MAX_ENTRY_BYTES:
        raise ValueDecodeError(f"cache entry of {len(raw)} bytes (max {MAX_ENTRY_BYTES})")
    try:
        data = json.loads(raw)
        payload = data["payload"]
        active = data["active"]
        if not isinstance(payload, dict) or active not in (None, True, False):
            raise TypeError("payload or active")
        return CacheEntry(
            registry=str(data["registry"]),
            identifier=str(data["identifier"]),
            outcome=Outcome(data["outcome"]),
            stored_at=float(data["stored_at"]),
            expires_at=float(data["expires_at"]),
            active=active,
            payload=payload,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueDecodeError(f"not a registry cache entry: {exc}") from exc


class RegistryCache:
    """The local view of the compacted cache topic."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, key: str, value: bytes | None) -> None:
        """One record of the cache topic: an entry, or a tombstone (``None``)."""
        if value is None:
            self._entries.pop(key, None)
            return
        entry = decode_entry(value)
        if entry.key != key:
            raise ValueDecodeError(f"cache record key {key!r} holds an entry for {entry.key!r}")
        current = self._entries.get(key)
        if current is None or entry.stored_at >= current.stored_at:
            self._entries[key] = entry

    def put(self, entry: CacheEntry) -> tuple[str, bytes]:
        """Store ``entry`` here; the record to publish on the cache topic."""
        value = encode_entry(entry)
        self._entries[entry.key] = entry
        return entry.key, value

    def get(self, registry: str, identifier: str, now: float) -> CacheEntry | None:
        """The fresh entry for a number, or ``None`` (absent or expired)."""
        entry = self._entries.get(cache_key(registry, identifier))
        if entry is None or not entry.fresh(now):
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def expired(self, now: float) -> list[str]:
        """Keys whose entry has expired (the owner writes their tombstones)."""
        return [key for key, entry in self._entries.items() if not entry.fresh(now)]
