"""The composition root: builds every dependency from the settings and the faust app.

Real adapters are wired by default; unit tests call the stage handlers directly
with fakes. One worker process runs:

- the ingress (pattern subscription over every member's submissions topic),
- the acts stages (validation, delivery, status), each a transactional stage runner,
- one forwarder per delay tier (retries and status polls wait there),
- the flow-state agent (a faust agent) and the prefecture watcher (a faust timer, leader only).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
import structlog
from mode import Service

from agents import flow_state
from agents.acts.delivery import STAGE as DELIVERY
from agents.acts.delivery import handle_delivery
from agents.acts.deps import ActsDeps
from agents.acts.followup import STAGE as FOLLOWUP
from agents.acts.followup import handle_followup
from agents.acts.links import LinkIndex
from agents.acts.machines import BY_TYPE
from agents.acts.prefecture import PrefectureWatcher
from agents.acts.status import STAGE as STATUS
from agents.acts.status import handle_status
from agents.acts.validation import STAGE as VALIDATION
from agents.acts.validation import handle_submitted
from agents.ingress.gateway import ingress_runner
from agents.ingress.handler import IngressCounters, IngressDeps
from connectors.tdt.registry import TdtConnectors
from relais.blobs.filesystem import FilesystemBlobStore
from relais.controls import ConnectorControls
from relais.flows.outbound import Outbound
from relais.kafka.clients import faust_credentials
from relais.kafka.compacted_view import CompactedView
from relais.kafka.publisher import Publisher
from relais.logs import READY_LINE, configure_logging
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.stages.delay_forwarder import DelayForwarder
from relais.stages.delays import TIERS
from relais.stages.failures import FailureRouter, RetryPolicy, parse_tiers, partner_policies
from relais.stages.records import InputRecord
from relais.stages.runner import StageRunner
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import (
    ACTS_CLASSIFICATIONS,
    ACTS_DELIVERY,
    ACTS_FOLLOWUPS,
    ACTS_STATUS,
    ACTS_SUBMITTED,
    STAGE_PARTNERS,
    dlq,
)

log = structlog.get_logger(__name__)

class Lifecycle(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class HubDependencies:
    """Everything the hub's stages share, started in order and stopped in reverse."""

    settings: Settings
    codec: AvroCodec
    members: MemberDirectory
    blobs: FilesystemBlobStore
    acts: ActsDeps
    prefecture: PrefectureWatcher
    controls: ConnectorControls
    ingress_counters: IngressCounters
    views: list[Lifecycle] = field(default_factory=list)
    runners: list[Lifecycle] = field(default_factory=list)
    stage_runners: dict[str, StageRunner] = field(default_factory=dict)

    async def start(self) -> None:
        await self.acts.journal.start()
        for view in self.views:
            await view.start()
        for runner in self.runners:
            await runner.start()
        log.info("hub.started", stages=list(self.stage_runners), members=len(self.members))

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.stop()
        for view in reversed(self.views):
            await view.stop()
        await self.acts.connectors.aclose()
        await self.acts.journal.stop()


def _stage(
    settings: Settings,
    codec: AvroCodec,
    stage: str,
    topic: str,
    handle: Callable[[InputRecord, ActsDeps], Awaitable[list[Outbound]]],
    acts: ActsDeps,
    policy: RetryPolicy,
    controls: ConnectorControls,
    member_policy: Callable[[str | None], RetryPolicy | None],
    flow_type: str = "acte",
) -> StageRunner:
    group_id = f"{settings.app_id}-{stage}"
    partner = STAGE_PARTNERS.get(stage)

    async def handler(record: InputRecord) -> list[Outbound]:
        return await handle(record, acts)

    return StageRunner(
        settings.bootstrap_servers, stage=stage, group_id=group_id, handler=handler,
        router=FailureRouter(stage=stage, group_id=group_id, flow_type=flow_type,
                             dlq_topic=dlq(stage).name, codec=codec, policy=policy,
                             policy_for=member_policy),
        topics=(topic,),
        paused=(lambda: controls.paused(partner)) if partner else None,
    )


def build_dependencies(settings: Settings) -> HubDependencies:
    codec = AvroCodec()
    bootstrap = settings.bootstrap_servers
    members = MemberDirectory(bootstrap, codec)
    blobs = FilesystemBlobStore(settings.blob_dir)
    links = LinkIndex(bootstrap, codec)
    classifications: CompactedView[dict[str, Any]] = CompactedView(
        bootstrap, codec, topic=ACTS_CLASSIFICATIONS.name,
        schema_name="ClassificationSnapshot", parse=lambda record: record,
    )
    acts = ActsDeps(
        codec=codec, members=members, blobs=blobs, links=links,
        classifications=classifications,
        connectors=TdtConnectors(timeout=settings.tdt_timeout_seconds),
        journal=Publisher(bootstrap, codec, client_id=f"{settings.app_id}-journal"),
        max_acte_bytes=settings.max_acte_bytes,
        poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",),
    )
    default_policy = RetryPolicy(parse_tiers(settings.retry_tiers))
    policy = partner_policies(settings.partner_retry_tiers).get("tdt", default_policy)

    def member_policy(siren: str | None) -> RetryPolicy | None:
        member = members.get(siren) if siren else None
        if member is None or not member.retry_tiers:
            return None
        return RetryPolicy(parse_tiers(member.retry_tiers))

    controls = ConnectorControls(bootstrap, codec)
    ingress_counters = IngressCounters()
    ingress = ingress_runner(
        bootstrap,
        IngressDeps(codec=codec, members=members, blobs=blobs,
                    max_submission_bytes=settings.max_submission_bytes,
                    counters=ingress_counters),
        group_id=f"{settings.app_id}-ingress",
    )
    stages = {
        "ingress": ingress,
        VALIDATION: _stage(settings, codec, VALIDATION, ACTS_SUBMITTED.name, handle_submitted,
                           acts, policy, controls, member_policy),
        DELIVERY: _stage(settings, codec, DELIVERY, ACTS_DELIVERY.name, handle_delivery,
                         acts, policy, controls, member_policy),
        STATUS: _stage(settings, codec, STATUS, ACTS_STATUS.name, handle_status, acts, policy,
                       controls, member_policy),
        FOLLOWUP: _stage(settings, codec, FOLLOWUP, ACTS_FOLLOWUPS.name, handle_followup, acts,
                         policy, controls, member_policy, flow_type="acte-followup"),
    }
    forwarders = [DelayForwarder(bootstrap, t, group_id=f"{settings.app_id}-delay-{t.label}")
                  for t in TIERS]
    return HubDependencies(
        settings=settings, codec=codec, members=members, blobs=blobs, acts=acts,
        prefecture=PrefectureWatcher(acts, members),
        controls=controls,
        ingress_counters=ingress_counters,
        views=[members, links, classifications, controls],
        runners=[*forwarders, *stages.values()],
        stage_runners=stages,
    )


def create_app(settings: Settings, deps: HubDependencies | None = None) -> faust.App:
    """The hub's faust app with every stage attached."""
    hub = deps or build_dependencies(settings)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=faust_credentials(settings.bootstrap_servers),
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=False,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        producer_acks=-1,
        datadir=str(settings.data_dir / "faust"),
    )
    flow_state.register(app, hub.codec, settings.bootstrap_servers, machines=BY_TYPE)

    @app.timer(settings.prefecture_poll_seconds, on_leader=True)
    async def prefecture_messages() -> None:
        if hub.members.ready.is_set() and not hub.controls.paused("tdt"):
            await hub.prefecture.run_once()

    @app.timer(60.0)
    async def stage_counters() -> None:
        """Every minute, one log line of what each stage did since start."""
        log.info(
            "hub.counters",
            stages={name: {"handled": r.stats.handled, "failed": r.stats.failed}
                     for name, r in hub.stage_runners.items()},
            ingress_accepted=hub.ingress_counters.accepted,
            ingress_rejected=hub.ingress_counters.rejected,
        )

    class HubRuntime(Service):
        """Starts the views and the stages with the app, stops them with it."""

        async def on_start(self) -> None:
            configure_logging(settings.log_format, settings.log_level)
            await hub.start()
            log.info("hub.ready")
            # The readiness line supervisors wait for, whatever the log level.
            print(READY_LINE, file=sys.stderr, flush=True)

        async def on_stop(self) -> None:
            await hub.stop()

    app.service(HubRuntime)
    return app
