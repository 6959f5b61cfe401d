"""The registry look-up flow as the hub will run it (design: docs/registries.md).

So far: the flow type and its machine, the ``RegistryLookup`` route (members publish it on
their submissions topic; the answer is a ``Notification`` of flow type ``registry`` on
their notifications topic, ``submission_id`` = the request id), the topics and the
dispatch stage (checks, cache first, else the registry's partition) with the cache's view.
The look-up stage's handler exists (:mod:`agents.registry.lookup`) but is not declared:
its :class:`agents.registry.service.LookupService` needs the registries' settings (keys,
tokens, URLs) that ``relais/settings.py`` does not have yet, so :data:`REGISTRY` is not
listed in ``hub/flows.py``.
"""

from __future__ import annotations

from agents.registry.dispatch import STAGE as DISPATCH
from agents.registry.dispatch import DispatchDeps, handle_requested
from agents.registry.machines import MACHINES
from agents.registry.views import RegistryCacheView
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from topics.registry import REGISTRY_REQUESTED, REGISTRY_TOPICS

#: The partners the look-up stage calls: ``relais connector pause registries``.
PARTNER = "registries"


def build(ctx: HubContext) -> FlowRuntime:
    """The dispatch stage's dependencies: the codec and the hub-wide cache's view, started
    before the stage."""
    view = RegistryCacheView(ctx.settings.bootstrap_servers, ctx.codec)
    return FlowRuntime(deps=DispatchDeps(codec=ctx.codec, cache=view.cache), views=[view])


REGISTRY = Flow(
    name="registry",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("RegistryLookup", REGISTRY_REQUESTED, "registry"),),
    stages=(Stage(DISPATCH, REGISTRY_REQUESTED, handle_requested, "registry"),),
    topics=REGISTRY_TOPICS,
    build=build,
)
