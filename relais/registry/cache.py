"""The hub-wide registry cache: entries, their expiry per kind of answer, and a local view.

Every worker keeps a :class:`RegistryCache` filled from one compacted topic (key
``<registry>:<number>``, value a ``RegistryCacheEntry`` Avro record, :func:`entry_record`;
a tombstone deletes), so the same
number is asked once whichever worker asks. Expiry is checked on read; the owner of a
registry (docs/registries.md) writes entries and tombstones. "Not found" is cached too
(negative caching), for less time: a new company may be registered tomorrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from relais.errors import ValueDecodeError

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


_SYMBOLS = {
    Outcome.FOUND: "FOUND",
    Outcome.NOT_FOUND: "NOT_FOUND",
    Outcome.NOT_DIFFUSIBLE: "NOT_DIFFUSIBLE",
}
_OUTCOMES = {symbol: outcome for outcome, symbol in _SYMBOLS.items()}


def entry_record(entry: CacheEntry) -> dict[str, Any]:
    """The ``RegistryCacheEntry`` Avro record of an entry (what the cache topic holds)."""
    return {
        "registry": entry.registry,
        "identifier": entry.identifier,
        "outcome": _SYMBOLS[entry.outcome],
        "stored_at": datetime.fromtimestamp(entry.stored_at, UTC),
        "expires_at": datetime.fromtimestamp(entry.expires_at, UTC),
        "active": entry.active,
        "payload": {str(k): str(v) for k, v in entry.payload.items()},
    }


def entry_from_record(record: Mapping[str, Any]) -> CacheEntry:
    """An entry from a decoded ``RegistryCacheEntry``; ValueDecodeError when inconsistent."""
    try:
        stored, expires = record["stored_at"], record["expires_at"]
        entry = CacheEntry(
            registry=str(record["registry"]),
            identifier=str(record["identifier"]),
            outcome=_OUTCOMES[record["outcome"]],
            stored_at=stored.timestamp() if isinstance(stored, datetime) else float(stored) / 1000,
            expires_at=expires.timestamp()
            if isinstance(expires, datetime)
            else float(expires) / 1000,
            active=record.get("active"),
            payload=dict(record.get("payload") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueDecodeError(f"not a registry cache entry: {exc}") from exc
    if entry.expires_at < entry.stored_at:
        raise ValueDecodeError(f"cache entry {entry.key} expires before it was stored")
    return entry


class RegistryCache:
    """The local view of the compacted cache topic."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, key: str, entry: CacheEntry | None) -> None:
        """One record of the cache topic: an entry, or a tombstone (``None``)."""
        if entry is None:
            self._entries.pop(key, None)
            return
        if entry.key != key:
            raise ValueDecodeError(f"cache record key {key!r} holds an entry for {entry.key!r}")
        current = self._entries.get(key)
        if current is None or entry.stored_at >= current.stored_at:
            self._entries[key] = entry

    def put(self, entry: CacheEntry) -> str:
        """Store ``entry`` here (the caller publishes it on the cache topic); its key."""
        self._entries[entry.key] = entry
        return entry.key

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
