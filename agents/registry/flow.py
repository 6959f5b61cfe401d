"""The registry look-up flow as the hub will run it (design: docs/registries.md).

So far: the flow type and its machine, the ``RegistryLookup`` route (members publish it on
their submissions topic; the answer is a ``Notification`` of flow type ``registry`` on
their notifications topic, ``submission_id`` = the request id), the topics and the
dispatch stage (checks, cache first, else the registry's partition). The view that fills
the cache from ``relais.registry.cache`` and the look-up stage (running
:class:`agents.registry.service.LookupService` on the registry's partition, parking and
``pending`` answers) are not written yet, so :data:`REGISTRY` is not listed in
``hub/flows.py``.
"""

from __future__ import annotations

from agents.registry.dispatch import STAGE as DISPATCH
from agents.registry.dispatch import DispatchDeps, handle_requested
from agents.registry.machines import MACHINES
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from relais.registry.cache import RegistryCache
from topics.registry import REGISTRY_REQUESTED, REGISTRY_TOPICS

#: The partners the look-up stage calls: ``relais connector pause registries``.
PARTNER = "registries"


def build(ctx: HubContext) -> FlowRuntime:
    """The dispatch stage's dependencies; its cache stays empty until the cache topic's
    view exists (every look-up then goes to its registry's partition)."""
    return FlowRuntime(deps=DispatchDeps(codec=ctx.codec, cache=RegistryCache()))


REGISTRY = Flow(
    name="registry",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("RegistryLookup", REGISTRY_REQUESTED, "registry"),),
    stages=(Stage(DISPATCH, REGISTRY_REQUESTED, handle_requested, "registry"),),
    topics=REGISTRY_TOPICS,
    build=build,
)
