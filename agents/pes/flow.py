"""The PES flow as the hub will run it: Hélios PES_Aller files to the comptable through
the member's TdT (S²LOW's Hélios API, ``connectors/tdt/helios.py``).

Declared: the flow type and its machine, the ``PesSubmission`` route, the topics, the
validation stage, the delivery stage (import exactly once, ``find_pes`` reconciliation),
the status stage (polls, PES_ACQUIT → acknowledged / partially-accepted / rejected), the
PES_Retour watcher (a timer) and the delivery journal's view with the PES lookups.
:data:`PES` is listed in ``hub/flows.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.pes.delivery import STAGE as DELIVERY
from agents.pes.delivery import handle_delivery
from agents.pes.deps import PesDeps
from agents.pes.journal import PesJournal
from agents.pes.machines import MACHINES
from agents.pes.retours import STAGE as RETOURS
from agents.pes.retours import PesRetourWatcher
from agents.pes.status import STAGE as STATUS
from agents.pes.status import handle_status
from agents.pes.validation import STAGE as VALIDATION
from agents.pes.validation import handle_submitted
from connectors.tdt.helios import HeliosConnectors
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage, Timer
from relais.stages.failures import parse_tiers
from topics.pes import PES_DELIVERY, PES_STATUS, PES_SUBMITTED, PES_TOPICS

#: The partner the PES stages call (the TdT's Hélios module): ``relais connector pause tdt``.
PARTNER = "tdt"


@dataclass
class PesFlowDeps(PesDeps):
    """The PES stages' dependencies, plus the PES_Retour watcher the timer runs."""

    retours: PesRetourWatcher | None = None


async def watch_retours(deps: PesFlowDeps) -> None:
    """One round of the PES_Retour watcher over every member's TdT account."""
    if deps.retours is not None:
        await deps.retours.run_once()


def _retour_interval(settings: Any) -> float:
    return float(settings.prefecture_poll_seconds)


def build(ctx: HubContext) -> FlowRuntime:
    """The PES stages' dependencies from what the hub shares, and the delivery journal's
    view with the PES lookups (content digest, NomFic), started before the stages."""
    settings = ctx.settings
    journal = PesJournal(settings.bootstrap_servers, ctx.codec)
    connectors = HeliosConnectors(timeout=settings.tdt_timeout_seconds)
    deps = PesFlowDeps(codec=ctx.codec, members=ctx.members, blobs=ctx.blobs, journal=journal,
                       connectors=connectors, publisher=ctx.journal,
                       poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",))
    deps.retours = PesRetourWatcher(deps, ctx.members, ctx.journal)
    return FlowRuntime(deps=deps, views=[journal], closers=[connectors.aclose])


PES = Flow(
    name="pes",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("PesSubmission", PES_SUBMITTED, "pes"),),
    stages=(
        Stage(VALIDATION, PES_SUBMITTED, handle_submitted, "pes", PARTNER),
        Stage(DELIVERY, PES_DELIVERY, handle_delivery, "pes", PARTNER),
        Stage(STATUS, PES_STATUS, handle_status, "pes", PARTNER),
    ),
    topics=PES_TOPICS,
    build=build,
    timers=(Timer(RETOURS, _retour_interval, watch_retours, PARTNER, on_leader=True),),
)
