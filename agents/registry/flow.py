"""The registry look-up flow as the hub runs it (design: docs/registries.md).

The flow type and its machine, the ``RegistryLookup`` route (members publish it on their
submissions topic; the answer is a ``Notification`` of flow type ``registry`` on their
notifications topic, ``submission_id`` = the request id), the topics and two stages:

- **registry-dispatch** (input ``relais.registry.requested``, keyed by member): checks
  the number, answers from the hub-wide cache, else forwards to
  ``relais.registry.lookups`` keyed by the registry's name;
- **registry-lookup** (input ``relais.registry.lookups``, at most
  :data:`agents.registry.lookup.BATCH_RECORDS` records a batch): the worker that owns a
  registry's partition runs :class:`agents.registry.service.LookupService` (its quota
  bucket and breaker), writes every answer to the compacted cache topic and notifies.
  On each assignment (:func:`on_lookups_assigned`) it takes the bucket over from the state
  the last owner published on ``relais.registry.quota`` and sweeps the cache's expired
  entries (tombstones).

**Key scheme.** ``relais.registry.lookups`` is keyed by the registry's name and its
partition count is fixed (:data:`topics.registry.REGISTRY_LOOKUPS`): Kafka's default
partitioner (murmur2 of the key, Java and aiokafka alike) places every look-up of one
registry on one partition, so one consumer of the group holds its bucket. With 3
partitions, ``sirene`` lands on partition 1 and ``entreprise`` on 2
(``tests/unit/test_registry_wiring.py`` pins it).

The registries come from the settings (``RELAIS_REGISTRY_*``); with none configured the
stages still run and answer ``rejected`` (``not_configured``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from aiokafka.partitioner import murmur2

from agents.registry.dispatch import STAGE as DISPATCH
from agents.registry.dispatch import handle_requested
from agents.registry.lookup import BATCH_RECORDS, handle_lookup
from agents.registry.lookup import STAGE as LOOKUP
from agents.registry.machines import MACHINES
from agents.registry.service import LookupService, Quota
from agents.registry.views import RegistryQuotaView, shared_cache_view
from connectors.registries.configured import configured_registries
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from relais.kafka.publisher import dataschema_uri
from relais.registry.bucket import BucketState, state_to_json
from relais.registry.cache import CacheEntry, RegistryCache, entry_record
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.registry import (
    REGISTRY_CACHE,
    REGISTRY_LOOKUPS,
    REGISTRY_QUOTA,
    REGISTRY_REQUESTED,
    REGISTRY_TOPICS,
)

log = structlog.get_logger(__name__)

#: The partners the look-up stage calls: ``relais connector pause registries``.
PARTNER = "registries"


@dataclass
class RegistryFlowDeps:
    """What both stages read (the fields of :class:`DispatchDeps` and :class:`LookupDeps`):
    the codec, the cache's view, the look-up service."""

    codec: AvroCodec
    cache: RegistryCache
    service: LookupService
    max_wait: float = 5.0
    clock: Callable[[], float] = field(default=time.time)


def lookup_partition(registry: str, partitions: int = REGISTRY_LOOKUPS.partitions) -> int:
    """The partition of ``relais.registry.lookups`` a registry's look-ups land on (Kafka's
    default partitioner: murmur2 of the key, the registry's name)."""
    return int(murmur2(registry.encode("utf-8")) & 0x7FFFFFFF) % partitions


async def on_lookups_assigned(deps: RegistryFlowDeps, partitions: set[tuple[str, int]]) -> None:
    """After each rebalance: the registries whose partition this worker now holds are
    taken over (their bucket restarts empty, blocked as the last owner published) and
    their expired cache entries swept."""
    held = {partition for topic, partition in partitions if topic == REGISTRY_LOOKUPS.name}
    owned = {name for name in deps.service.connectors if lookup_partition(name) in held}
    deps.service.assigned(owned)
    await deps.service.sweep(force=True)


def build(ctx: HubContext) -> FlowRuntime:
    """The cache's view (started before the stages), the configured registry clients
    (closed at the end) and the look-up service writing answers to the cache topic through
    the hub's acknowledged publisher."""
    settings = ctx.settings
    view, made_here = shared_cache_view(ctx)  # one per worker, acts-validation reads it too
    registries = configured_registries(settings)
    schema = dataschema_uri(ctx.codec, "RegistryCacheEntry")

    async def publish(entry: CacheEntry) -> None:
        await ctx.journal.publish(
            REGISTRY_CACHE.name, key=entry.key, schema_name="RegistryCacheEntry",
            record=entry_record(entry),
            headers=EventHeaders.new(source="/relais/hub/registry-lookup",
                                     type="fr.relais.registry.RegistryCacheEntry",
                                     subject=entry.key, flow_id=None, dataschema=schema),
        )

    quota_view = RegistryQuotaView(settings.bootstrap_servers)

    async def publish_quota(registry: str, state: BucketState) -> None:
        await ctx.journal.publish_raw(REGISTRY_QUOTA.name, key=registry,
                                      value=state_to_json(state),
                                      headers=[("content-type", b"application/json")])

    async def publish_tombstones(keys: list[str]) -> None:
        await asyncio.gather(*(ctx.journal.publish_raw(REGISTRY_CACHE.name, key=key,
                                                       value=None, headers=[])
                               for key in keys))

    service = LookupService(
        registries.connectors,
        {name: Quota(q.limit, q.window_seconds) for name, q in registries.quotas.items()},
        view.cache,
        publish=publish,
        max_wait=float(settings.registry_max_wait_seconds),
        quota_state=quota_view.get,
        publish_quota=publish_quota,
        publish_tombstones=publish_tombstones,
    )
    quota_view.on_state = service.observe_quota
    log.info("registries.configured", registries=sorted(registries.connectors))
    deps = RegistryFlowDeps(codec=ctx.codec, cache=view.cache, service=service,
                            max_wait=float(settings.registry_max_wait_seconds))
    return FlowRuntime(deps=deps, views=[view, quota_view] if made_here else [quota_view],
                       closers=[registries.aclose])


REGISTRY = Flow(
    name="registry",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("RegistryLookup", REGISTRY_REQUESTED, "registry"),),
    stages=(
        Stage(DISPATCH, REGISTRY_REQUESTED, handle_requested, "registry"),
        Stage(LOOKUP, REGISTRY_LOOKUPS, handle_lookup, "registry", PARTNER,
              max_batch_records=BATCH_RECORDS, on_assigned=on_lookups_assigned),
    ),
    topics=REGISTRY_TOPICS,
    build=build,
)
