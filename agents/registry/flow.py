"""The registry look-up flow as the hub runs it (design: docs/registries.md).

The flow type and its machine, the ``RegistryLookup`` route (members publish it on their
submissions topic; the answer is a ``Notification`` of flow type ``registry`` on their
notifications topic, ``submission_id`` = the request id), the topics and two stages:

- **registry-dispatch** (input ``relais.registry.requested``, keyed by member): checks
  the number, answers from the hub-wide cache, else forwards to
  ``relais.registry.lookups`` keyed by the registry's name;
- **registry-lookup** (input ``relais.registry.lookups``): the worker that owns a
  registry's partition runs :class:`agents.registry.service.LookupService` (its quota
  bucket and breaker), writes every answer to the compacted cache topic and notifies.

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from agents.registry.dispatch import STAGE as DISPATCH
from agents.registry.dispatch import handle_requested
from agents.registry.lookup import STAGE as LOOKUP
from agents.registry.lookup import handle_lookup
from agents.registry.machines import MACHINES
from agents.registry.service import LookupService, Quota
from agents.registry.views import RegistryCacheView
from connectors.registries.configured import configured_registries
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from relais.kafka.publisher import dataschema_uri
from relais.registry.cache import CacheEntry, RegistryCache, entry_record
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.registry import REGISTRY_CACHE, REGISTRY_LOOKUPS, REGISTRY_REQUESTED, REGISTRY_TOPICS

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


def build(ctx: HubContext) -> FlowRuntime:
    """The cache's view (started before the stages), the configured registry clients
    (closed at the end) and the look-up service writing answers to the cache topic through
    the hub's acknowledged publisher."""
    settings = ctx.settings
    view = RegistryCacheView(settings.bootstrap_servers, ctx.codec)
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

    service = LookupService(
        registries.connectors,
        {name: Quota(q.limit, q.window_seconds) for name, q in registries.quotas.items()},
        view.cache,
        publish=publish,
        max_wait=float(settings.registry_max_wait_seconds),
    )
    log.info("registries.configured", registries=sorted(registries.connectors))
    deps = RegistryFlowDeps(codec=ctx.codec, cache=view.cache, service=service,
                            max_wait=float(settings.registry_max_wait_seconds))
    return FlowRuntime(deps=deps, views=[view], closers=[registries.aclose])


REGISTRY = Flow(
    name="registry",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("RegistryLookup", REGISTRY_REQUESTED, "registry"),),
    stages=(
        Stage(DISPATCH, REGISTRY_REQUESTED, handle_requested, "registry"),
        Stage(LOOKUP, REGISTRY_LOOKUPS, handle_lookup, "registry", PARTNER),
    ),
    topics=REGISTRY_TOPICS,
    build=build,
)
