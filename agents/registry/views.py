"""The registry flow's compacted topics as a worker sees them, read whole and followed
(:class:`relais.kafka.compacted_view.CompactedView`): the hub-wide cache
(``relais.registry.cache``) into a :class:`relais.registry.cache.RegistryCache`, where a
tombstone drops the key; each registry's published quota state (``relais.registry.quota``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, cast

import structlog

from relais.errors import ValueDecodeError
from relais.flows.kit import HubContext
from relais.kafka.compacted_view import CompactedView
from relais.registry.bucket import BucketState, state_from_json
from relais.registry.cache import CacheEntry, RegistryCache, entry_from_record
from relais.wire.avro_codec import AvroCodec
from topics.registry import REGISTRY_CACHE, REGISTRY_QUOTA

log = structlog.get_logger(__name__)


def _parse(record: Mapping[str, Any]) -> CacheEntry | None:
    """An entry, or ``None`` (dropped, logged) for an inconsistent one: a bad record must
    neither stop the view nor answer a member."""
    try:
        return entry_from_record(record)
    except ValueDecodeError as exc:
        log.error("registries.cache_record_unreadable", error=str(exc))
        return None


class RegistryCacheView:
    """Starts before the registry stages; ``cache`` is what they read."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        self.cache = RegistryCache()
        self.view: CompactedView[CacheEntry | None] = CompactedView(
            bootstrap_servers,
            codec,
            topic=REGISTRY_CACHE.name,
            schema_name=REGISTRY_CACHE.value_schema,
            parse=_parse,
            on_change=self._changed,
        )

    def _changed(self, key: str, entry: CacheEntry | None) -> None:
        try:
            self.cache.apply(key, entry)
        except ValueDecodeError as exc:
            log.error("registries.cache_record_unreadable", key=key, error=str(exc))

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()


SHARED_KEY = "registry.cache_view"


def shared_cache_view(ctx: HubContext) -> tuple[RegistryCacheView, bool]:
    """The worker's one view of the cache topic (one consumer per worker, whichever flows
    read it: the registry stages, acts-validation's contractor check) and whether this
    call made it: the flow that made it lists it in its ``FlowRuntime.views`` (started
    once, before every stage), the others only read its ``cache``."""
    view = ctx.shared.get(SHARED_KEY)
    if isinstance(view, RegistryCacheView):
        return view, False
    view = RegistryCacheView(ctx.settings.bootstrap_servers, ctx.codec)
    ctx.shared[SHARED_KEY] = view
    return view, True


class _JsonValues:
    """What :class:`CompactedView` asks of a codec, for the quota topic's raw JSON values:
    the value's bytes, handed to the view's parser as they are."""

    def decode(self, value: bytes, expected: str | None = None) -> SimpleNamespace:
        return SimpleNamespace(record={"raw": value})


def _parse_state(record: Mapping[str, Any]) -> BucketState | None:
    try:
        return state_from_json(bytes(record["raw"]))
    except ValueError as exc:
        log.error("registries.quota_record_unreadable", error=str(exc))
        return None


class RegistryQuotaView:
    """``relais.registry.quota`` read whole and followed: each registry's last published
    :class:`BucketState` (its ``Retry-After`` block), for the worker that takes a
    registry's partition over; ``on_state`` (set by the flow) hears every new one."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.states: dict[str, BucketState] = {}
        self.on_state: Callable[[str, BucketState], None] | None = None
        self.view: CompactedView[BucketState | None] = CompactedView(
            bootstrap_servers,
            cast(AvroCodec, _JsonValues()),
            topic=REGISTRY_QUOTA.name,
            schema_name=REGISTRY_QUOTA.value_schema,
            parse=_parse_state,
            on_change=self.changed,
        )

    def get(self, registry: str) -> BucketState | None:
        return self.states.get(registry)

    def changed(self, registry: str, state: BucketState | None) -> None:
        if state is None:
            self.states.pop(registry, None)
            return
        self.states[registry] = state
        if self.on_state is not None:
            self.on_state(registry, state)

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()
