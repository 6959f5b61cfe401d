"""The PES flow as the hub will run it: Hélios PES_Aller files to the comptable through
the member's TdT (S²LOW's Hélios API, ``connectors/tdt/helios.py``).

Declared: the flow type and its machine, the ``PesSubmission`` route, the topics, the
validation stage, the delivery stage (import exactly once, ``find_pes`` reconciliation),
the status stage (polls, PES_ACQUIT → acknowledged / partially-accepted / rejected) and the
delivery journal's view with the PES lookups. Not written yet: the PES_Retour watcher.
:data:`PES` is not yet listed in ``hub/flows.py`` (no integration run on a broker yet).
"""

from __future__ import annotations

from agents.pes.delivery import STAGE as DELIVERY
from agents.pes.delivery import handle_delivery
from agents.pes.deps import PesDeps
from agents.pes.journal import PesJournal
from agents.pes.machines import MACHINES
from agents.pes.status import STAGE as STATUS
from agents.pes.status import handle_status
from agents.pes.validation import STAGE as VALIDATION
from agents.pes.validation import handle_submitted
from connectors.tdt.helios import HeliosConnectors
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from relais.stages.failures import parse_tiers
from topics.pes import PES_DELIVERY, PES_STATUS, PES_SUBMITTED, PES_TOPICS

#: The partner the PES stages call (the TdT's Hélios module): ``relais connector pause tdt``.
PARTNER = "tdt"


def build(ctx: HubContext) -> FlowRuntime:
    """The PES stages' dependencies from what the hub shares, and the delivery journal's
    view with the PES lookups (content digest, NomFic), started before the stages."""
    settings = ctx.settings
    journal = PesJournal(settings.bootstrap_servers, ctx.codec)
    connectors = HeliosConnectors(timeout=settings.tdt_timeout_seconds)
    deps = PesDeps(codec=ctx.codec, members=ctx.members, blobs=ctx.blobs, journal=journal,
                   connectors=connectors, publisher=ctx.journal,
                   poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",))
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
)
