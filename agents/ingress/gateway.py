"""The ingress stage: pattern-subscribed to every member's submissions topic.

Why not a faust agent: faust-streaming subscribes to explicit topic lists only
(its aiokafka driver's ``subscribe`` carries a "pattern does not work" note), and
members are registered while the hub runs. The stage runner uses aiokafka's
pattern subscription, so a new member's topic is consumed within
``metadata_max_age_ms`` without a restart. Outputs and offsets are committed in
one transaction (see :mod:`relais.stages.runner`).
"""

from __future__ import annotations

from typing import Any

from agents.ingress.handler import STAGE, IngressCounters, IngressDeps, handle_submission
from relais.flows.outbound import Outbound
from relais.stages.failures import FailureRouter, RetryPolicy
from relais.stages.records import InputRecord, without_internal_headers
from relais.stages.runner import StageRunner
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import INGRESS_DEADLETTER
from topics.member import SUBMISSIONS_PATTERN


def ingress_router(group_id: str, codec: AvroCodec) -> FailureRouter:
    """The ingress's failure router: no retry tiers (a retried record would come back
    on the member's topic, where its bookkeeping headers are dropped), so a record the
    handler raises on is dead-lettered at once, by the same builder as every stage's."""
    return FailureRouter(
        stage=STAGE, group_id=group_id, flow_type="unknown",
        dlq_topic=INGRESS_DEADLETTER.name, codec=codec, policy=RetryPolicy(tiers=()),
    )


class IngressRunner(StageRunner):
    """The ingress's stage runner: on stop, the acceptances not yet summarised are
    (``ingress.accepted_summary``, see :class:`~agents.ingress.handler.IngressCounters`)."""

    def __init__(self, bootstrap_servers: str, *, counters: IngressCounters,
                 **options: Any) -> None:
        super().__init__(bootstrap_servers, **options)
        self._counters = counters

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            self._counters.summarise()


def ingress_runner(
    bootstrap_servers: str, deps: IngressDeps, *, group_id: str, metadata_max_age_ms: int = 3000,
    overlap_commits: bool = True,
) -> StageRunner:
    """The ingress as a stage runner.

    Each record's ``relais_*`` headers are dropped first (``prepare``), so neither the
    handler, nor the failure router, nor the logs read what a member wrote there. The
    handler rejects what it cannot accept; it raises only for records of members that are
    not registered, which the router dead-letters.
    """

    async def handle(record: InputRecord) -> list[Outbound]:
        return await handle_submission(record, deps)

    return IngressRunner(
        bootstrap_servers,
        counters=deps.counters,
        stage=STAGE,
        group_id=group_id,
        handler=handle,
        router=ingress_router(group_id, deps.codec),
        pattern=SUBMISSIONS_PATTERN,
        metadata_max_age_ms=metadata_max_age_ms,
        max_records=500,
        prepare=without_internal_headers,
        overlap_commits=overlap_commits,
    )
