"""The hub-wide registry cache as every worker sees it: ``relais.registry.cache`` read whole
and followed (:class:`relais.kafka.compacted_view.CompactedView`) into a
:class:`relais.registry.cache.RegistryCache`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from relais.errors import ValueDecodeError
from relais.kafka.compacted_view import CompactedView
from relais.registry.cache import CacheEntry, RegistryCache, entry_from_record
from relais.wire.avro_codec import AvroCodec
from topics.registry import REGISTRY_CACHE

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
