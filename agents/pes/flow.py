"""The PES flow as the hub will run it: Hélios PES_Aller files to the comptable through
the member's TdT (S²LOW's Hélios API, ``connectors/tdt/helios.py``).

So far: the flow type and its machine, the ``PesSubmission`` route, the topics, the
validation stage and the delivery journal's view with the PES lookups. Delivery (import
with the delivery journal and ``find_pes`` reconciliation), status polling, the
PES_ACQUIT outcome and the PES_Retour watcher are not written yet, so :data:`PES` is not
listed in ``hub/flows.py``.
"""

from __future__ import annotations

from agents.pes.deps import JOURNAL_KEYS, PesDeps
from agents.pes.machines import MACHINES
from agents.pes.validation import STAGE as VALIDATION
from agents.pes.validation import handle_submitted
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from relais.journal.view import JournalView
from topics.pes import PES_SUBMITTED, PES_TOPICS

#: The partner the PES stages call (the TdT's Hélios module): ``relais connector pause tdt``.
PARTNER = "tdt"


def build(ctx: HubContext) -> FlowRuntime:
    """The PES stages' dependencies from what the hub shares, and the delivery journal's
    view with the PES lookups (content digest, NomFic), started before the stages."""
    journal = JournalView(ctx.settings.bootstrap_servers, ctx.codec, JOURNAL_KEYS)
    deps = PesDeps(codec=ctx.codec, members=ctx.members, blobs=ctx.blobs, journal=journal)
    return FlowRuntime(deps=deps, views=[journal])


PES = Flow(
    name="pes",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("PesSubmission", PES_SUBMITTED, "pes"),),
    stages=(Stage(VALIDATION, PES_SUBMITTED, handle_submitted, "pes", PARTNER),),
    topics=PES_TOPICS,
    build=build,
)
