"""The signature flow as the hub runs it: a member's i-Parapheur signs its actes before
they go to the TdT (issue 10).

Two stages on the partner ``iparapheur`` (``relais connector pause iparapheur`` holds
them): ``signature-create`` (the dossier, exactly once) and ``signature-status`` (one
history read per due poll, then wait, collect, or reject). They move flows of the acts'
type ``acte`` (its machine has ``signing`` and ``signed`` between ``validated`` and
``posted``): acts-validation routes a member's acte here when its ``iparapheur`` account
has ``acte.*`` settings; a signed acte goes back to ``relais.acts.delivery``.
"""

from __future__ import annotations

from agents.signature.connectors import IParapheurConnectors
from agents.signature.create import STAGE as CREATE
from agents.signature.create import handle_request
from agents.signature.deps import SignatureDeps
from agents.signature.settings import PARTNER
from agents.signature.status import STAGE as STATUS
from agents.signature.status import handle_check
from relais.flows.kit import Flow, FlowRuntime, HubContext, Stage
from relais.journal.view import JournalView
from relais.stages.failures import parse_tiers
from topics.signature import SIGNATURE_REQUESTS, SIGNATURE_STATUS, SIGNATURE_TOPICS


def build(ctx: HubContext) -> FlowRuntime:
    """The signature stages' dependencies: the delivery journal (a view started before
    the stages) and one i-Parapheur connector per member account (closed at the end)."""
    settings = ctx.settings
    journal_view = JournalView(settings.bootstrap_servers, ctx.codec)
    connectors = IParapheurConnectors(timeout=float(settings.tdt_timeout_seconds))
    deps = SignatureDeps(
        codec=ctx.codec, members=ctx.members, blobs=ctx.blobs, journal_view=journal_view,
        journal=ctx.journal, connectors=connectors,
        poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",),
        max_acte_bytes=settings.max_acte_bytes,
    )
    return FlowRuntime(deps=deps, views=[journal_view], closers=[connectors.aclose])


SIGNATURE = Flow(
    name="signature",
    partner=PARTNER,
    machines=(),
    routes=(),
    stages=(
        Stage(CREATE, SIGNATURE_REQUESTS, handle_request, "acte", PARTNER),
        Stage(STATUS, SIGNATURE_STATUS, handle_check, "acte", PARTNER),
    ),
    topics=SIGNATURE_TOPICS,
    build=build,
)
