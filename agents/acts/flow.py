"""The acts flow as the hub runs it: actes and their follow-ups to the préfecture
through the member's TdT (S²LOW or compatible).

The one declaration (:data:`ACTS`) the hub reads: two flow types and their state
machines, the two schemas members submit, four stages, the prefecture watcher
timer, the flow's topics, and :func:`build`, which makes the stages' dependencies
from what the hub shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.acts.delivery import STAGE as DELIVERY
from agents.acts.delivery import handle_delivery
from agents.acts.deps import ActsDeps
from agents.acts.followup import STAGE as FOLLOWUP
from agents.acts.followup import handle_followup
from agents.acts.links import LinkIndex
from agents.acts.machines import MACHINES
from agents.acts.prefecture import STAGE as PREFECTURE
from agents.acts.prefecture import PrefectureWatcher
from agents.acts.status import STAGE as STATUS
from agents.acts.status import handle_status
from agents.acts.validation import STAGE as VALIDATION
from agents.acts.validation import handle_submitted
from agents.registry.views import shared_cache_view
from connectors.tdt.registry import TdtConnectors
from relais.flows.kit import Flow, FlowRuntime, HubContext, Lifecycle, Route, Stage, Timer
from relais.kafka.compacted_view import CompactedView
from relais.stages.failures import parse_tiers
from topics.acts import (
    ACTS_CLASSIFICATIONS,
    ACTS_DELIVERY,
    ACTS_FOLLOWUPS,
    ACTS_STATUS,
    ACTS_SUBMITTED,
    ACTS_TOPICS,
)

#: The partner every acts stage calls; ``relais connector pause tdt`` holds them all.
PARTNER = "tdt"

#: Records per acts-delivery batch (``Stage.max_batch_records``; one transaction): the
#: runner's workers (16) take all of a batch's posts at once, and a batch commits when its
#: slowest post is done (4 is too few: L3 saturation fell from ~25 to 6 actes/s).
DELIVERY_BATCH_RECORDS = 16
#: How long the broker may hold acts-delivery's fetch (``Stage.fetch_max_wait_ms``): while
#: one fetch is held no other is sent, so the partition whose batch was just committed is
#: fetched again within 100 ms instead of aiokafka's 500.
DELIVERY_FETCH_MAX_WAIT_MS = 100


@dataclass
class ActsFlowDeps(ActsDeps):
    """The acts stages' dependencies, plus the prefecture watcher the timer runs (it
    remembers, between rounds, which messages it delivered or gave up on)."""

    prefecture: PrefectureWatcher | None = None


async def watch_prefecture(deps: ActsFlowDeps) -> None:
    """One round of the prefecture watcher over every member's TdT account."""
    if deps.prefecture is not None:
        await deps.prefecture.run_once()


def _prefecture_interval(settings: Any) -> float:
    return float(settings.prefecture_poll_seconds)


def build(ctx: HubContext) -> FlowRuntime:
    """The acts stages' dependencies from what the hub shares: the link journal, the
    classification snapshots and the registry cache (views started before the stages; the
    cache's view is the worker's one, shared with the registry flow), one TdT client per
    member account (closed at the end), and the prefecture watcher."""
    settings = ctx.settings
    bootstrap = settings.bootstrap_servers
    links = LinkIndex(bootstrap, ctx.codec)
    classifications: CompactedView[dict[str, Any]] = CompactedView(
        bootstrap, ctx.codec, topic=ACTS_CLASSIFICATIONS.name,
        schema_name="ClassificationSnapshot", parse=lambda record: record,
    )
    connectors = TdtConnectors(timeout=settings.tdt_timeout_seconds)
    registry, made_here = shared_cache_view(ctx)
    deps = ActsFlowDeps(
        codec=ctx.codec, members=ctx.members, blobs=ctx.blobs, links=links,
        classifications=classifications, connectors=connectors, journal=ctx.journal,
        max_acte_bytes=settings.max_acte_bytes,
        poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",),
        registry_cache=registry.cache,
        registry_configured=bool(settings.registry_sirene_url),
        contractor_wait_tiers=parse_tiers(settings.contractor_wait_tiers) or ("5s",),
    )
    deps.prefecture = PrefectureWatcher(deps, ctx.members)
    views: list[Lifecycle] = [links, classifications, *([registry] if made_here else [])]
    return FlowRuntime(deps=deps, views=views, closers=[connectors.aclose])


ACTS = Flow(
    name="acts",
    partner=PARTNER,
    machines=MACHINES,
    routes=(
        Route("ActeSubmission", ACTS_SUBMITTED, "acte"),
        Route("ActeFollowUp", ACTS_FOLLOWUPS, "acte-followup"),
    ),
    stages=(
        Stage(VALIDATION, ACTS_SUBMITTED, handle_submitted, "acte", PARTNER),
        Stage(DELIVERY, ACTS_DELIVERY, handle_delivery, "acte", PARTNER,
              max_batch_records=DELIVERY_BATCH_RECORDS,
              fetch_max_wait_ms=DELIVERY_FETCH_MAX_WAIT_MS),
        Stage(STATUS, ACTS_STATUS, handle_status, "acte", PARTNER),
        Stage(FOLLOWUP, ACTS_FOLLOWUPS, handle_followup, "acte-followup", PARTNER),
    ),
    topics=ACTS_TOPICS,
    build=build,
    timers=(Timer(PREFECTURE, _prefecture_interval, watch_prefecture, PARTNER, on_leader=True),),
)
