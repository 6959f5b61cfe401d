"""The registry look-up flow's topics (who a SIREN or SIRET is), each declared once.

=========================  =============  ==================  ==================================
topic                      key            value               written by → read by
=========================  =============  ==================  ==================================
relais.registry.requested  member SIREN   RegistryLookup      ingress → registry-dispatch
relais.registry.lookups    registry name  RegistryLookup      registry-dispatch → registry-lookup
relais.registry.cache      registry:num   RegistryCacheEntry  registry-lookup → every worker
relais.registry.quota      registry name  JSON bucket state   registry-lookup → the next owner
=========================  =============  ==================  ==================================

``relais.registry.lookups`` is keyed by registry so that one partition, hence one worker,
owns each registry's quota bucket and circuit breaker (docs/registries.md). The registry
flow declares them (``agents.registry.flow.REGISTRY``). The kernel never imports this module.
"""

from __future__ import annotations

from topics.catalogue import HUB_PARTITIONS
from topics.spec import TopicSpec

REGISTRY_REQUESTED = TopicSpec(
    name="relais.registry.requested",
    partitions=HUB_PARTITIONS,
    key="member SIREN (string)",
    value_schema="RegistryLookup",
    doc="Look-ups the ingress accepted, to be answered from the cache or sent to their registry.",
)

REGISTRY_LOOKUPS = TopicSpec(
    name="relais.registry.lookups",
    partitions=3,
    key="registry name (string): one partition, hence one worker, per registry",
    value_schema="RegistryLookup",
    doc="Look-ups the cache could not answer, waiting for their registry's quota.",
)

REGISTRY_CACHE = TopicSpec(
    name="relais.registry.cache",
    partitions=1,
    key="'<registry>:<SIREN or SIRET>' (string)",
    value_schema="RegistryCacheEntry",
    doc="The hub-wide registry cache (compacted; tombstones for expired answers).",
    cleanup_policy="compact",
)

REGISTRY_QUOTA = TopicSpec(
    name="relais.registry.quota",
    partitions=1,
    key="registry name (string)",
    value_schema="raw",
    doc="Each registry's quota block (Retry-After) and last call as JSON "
    "(relais.registry.bucket.BucketState), published after a 429, for the next owner "
    "after a rebalance.",
    cleanup_policy="compact",
)

#: Every topic of the registry flow, in the order ``relais topics apply`` creates them.
REGISTRY_TOPICS: tuple[TopicSpec, ...] = (
    REGISTRY_REQUESTED,
    REGISTRY_LOOKUPS,
    REGISTRY_CACHE,
    REGISTRY_QUOTA,
)
