"""The hub asking a registry for itself (``relais registry lookup``, ``relais members add``).

Through the same cache and the same quota as the members' look-ups: the hub-wide cache's
view first (:class:`agents.registry.views.RegistryCacheView`); on a miss, a
``RegistryLookup`` without a member (``member_siren`` empty) goes to
``relais.registry.lookups`` keyed by the registry, so the worker that owns that registry's
partition (its token bucket, its breaker) makes the call, and the answer arrives on the
cache topic, which the view follows. Calling the registry from here instead would spend
quota the owner's bucket does not see: with several operators (or a ``members add`` during
a burst) the cluster-wide quota would no longer hold.

``relais registry forget`` (:func:`forget_number`) publishes a tombstone for a number in
every look-up registry on ``relais.registry.cache``: each worker's view drops it, so the
next look-up asks the registry again (through the owner's quota), and compaction reclaims
the record.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from agents.registry.dispatch import lookup_reasons
from agents.registry.views import RegistryCacheView
from relais.errors import Reason
from relais.identifiers import normalize_identifier
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.registry.cache import CacheEntry, cache_key
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.registry import REGISTRY_CACHE, REGISTRY_LOOKUPS

SOURCE = "/relais/ops/registry"
SYMBOLS = {"sirene": "SIRENE", "entreprise": "ENTREPRISE"}
#: The registries a number is looked up in (the Annuaire answers by commune, not number).
LOOKUP_REGISTRIES: tuple[str, ...] = tuple(SYMBOLS)


@dataclass(frozen=True)
class Asked:
    """What the hub learnt: the answer (None: still pending when the wait ended) and
    whether the cache already held it."""

    number: str
    entry: CacheEntry | None
    from_cache: bool


def check_number(identifier: str, registry: str = "sirene") -> tuple[str, list[Reason]]:
    """The normalised number and why it cannot be asked (empty: it can)."""
    return normalize_identifier(identifier), lookup_reasons(identifier, registry, "relais")


async def ask_registry(
    bootstrap_servers: str,
    codec: AvroCodec,
    identifier: str,
    *,
    registry: str = "sirene",
    timeout: float = 60.0,
) -> Asked:
    """The registry's answer for ``identifier`` (ValueError for a number that cannot be
    asked, with the reasons in its message)."""
    number, reasons = check_number(identifier, registry)
    if reasons:
        raise ValueError("; ".join(f"{r.field}: {r.message}" for r in reasons))
    view = RegistryCacheView(bootstrap_servers, codec)
    await view.start()
    try:
        entry = view.cache.get(registry, number, time.time())
        if entry is not None:
            return Asked(number, entry, from_cache=True)
        await _publish_lookup(bootstrap_servers, codec, registry, number)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = view.cache.get(registry, number, time.time())
            if entry is not None:
                return Asked(number, entry, from_cache=False)
            await asyncio.sleep(0.2)
        return Asked(number, None, from_cache=False)
    finally:
        await view.stop()


async def _publish_lookup(
    bootstrap_servers: str, codec: AvroCodec, registry: str, number: str
) -> None:
    request_id = f"operator-{uuid.uuid4().hex[:12]}"
    publisher = Publisher(bootstrap_servers, codec, client_id="relais-registry-ask")
    await publisher.start()
    try:
        await publisher.publish(
            REGISTRY_LOOKUPS.name,
            key=registry,
            schema_name="RegistryLookup",
            record={"request_id": request_id, "member_siren": "", "identifier": number,
                    "registry": SYMBOLS[registry], "purpose": "relais",
                    "contract_submission_id": None},
            headers=EventHeaders.new(source=SOURCE, type="fr.relais.registry.RegistryLookup",
                                     subject=request_id, flow_id=None,
                                     dataschema=dataschema_uri(codec, "RegistryLookup")),
        )
    finally:
        await publisher.stop()


def forget_keys(identifier: str) -> list[str]:
    """The cache keys of ``identifier`` in every look-up registry (ValueError, with the
    reasons, for a number that cannot be asked)."""
    number, reasons = check_number(identifier)
    if reasons:
        raise ValueError("; ".join(f"{r.field}: {r.message}" for r in reasons))
    return [cache_key(registry, number) for registry in LOOKUP_REGISTRIES]


async def forget_number(bootstrap_servers: str, codec: AvroCodec, identifier: str) -> list[str]:
    """Tombstones for ``identifier`` on the cache topic (acknowledged); the keys."""
    keys = forget_keys(identifier)
    publisher = Publisher(bootstrap_servers, codec, client_id="relais-registry-forget")
    await publisher.start()
    try:
        for key in keys:
            await publisher.publish_raw(REGISTRY_CACHE.name, key=key, value=None,
                                        headers=[("ce_source", SOURCE.encode("utf-8"))])
    finally:
        await publisher.stop()
    return keys
