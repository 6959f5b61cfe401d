"""The registry look-up flow as the hub will run it (design: docs/registries.md).

So far: the flow type and its machine, the ``RegistryLookup`` route (members publish it on
their submissions topic; the answer is a ``Notification`` of flow type ``registry`` on
their notifications topic, ``submission_id`` = the request id) and the topics. The
dispatch stage (cache first, then the registry's partition), the look-up stage (quota
bucket, breaker, single-flight, cache writes) and their dependencies are not written yet,
so :data:`REGISTRY` is not listed in ``hub/flows.py``.
"""

from __future__ import annotations

from agents.registry.machines import MACHINES
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route
from topics.registry import REGISTRY_REQUESTED, REGISTRY_TOPICS

#: The partners the look-up stage calls: ``relais connector pause registries``.
PARTNER = "registries"


def build(ctx: HubContext) -> FlowRuntime:
    """No stage runs yet: nothing to build beyond the codec the routes need."""
    return FlowRuntime(deps=ctx.codec)


REGISTRY = Flow(
    name="registry",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("RegistryLookup", REGISTRY_REQUESTED, "registry"),),
    stages=(),
    topics=REGISTRY_TOPICS,
    build=build,
)
