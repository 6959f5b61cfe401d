"""The ingress stage: pattern-subscribed to every member's submissions topic.

Why not a faust agent: faust-streaming subscribes to explicit topic lists only
(its aiokafka driver's ``subscribe`` carries a "pattern does not work" note), and
members are registered while the hub runs. The stage runner uses aiokafka's
pattern subscription, so a new member's topic is consumed within
``metadata_max_age_ms`` without a restart. Outputs and offsets are committed in
one transaction (see :mod:`relais.stages.runner`).
"""

from __future__ import annotations

from agents.ingress.handler import STAGE, IngressDeps, handle_submission
from relais.flows.outbound import Outbound
from relais.stages.failures import FailureRouter, RetryPolicy
from relais.stages.records import InputRecord
from relais.stages.runner import StageRunner
from topics.catalogue import INGRESS_DEADLETTER
from topics.member import SUBMISSIONS_PATTERN


def ingress_runner(
    bootstrap_servers: str, deps: IngressDeps, *, group_id: str, metadata_max_age_ms: int = 3000
) -> StageRunner:
    """The ingress as a stage runner. Its handler never raises; should a bug make it, the
    record is dead-lettered at once (no retry tiers: ingress decisions are deterministic)."""

    async def handle(record: InputRecord) -> list[Outbound]:
        return await handle_submission(record, deps)

    return StageRunner(
        bootstrap_servers,
        stage=STAGE,
        group_id=group_id,
        handler=handle,
        router=FailureRouter(
            stage=STAGE, group_id=group_id, flow_type="unknown",
            dlq_topic=INGRESS_DEADLETTER.name, codec=deps.codec, policy=RetryPolicy(tiers=()),
        ),
        pattern=SUBMISSIONS_PATTERN,
        metadata_max_age_ms=metadata_max_age_ms,
        max_records=500,
    )
