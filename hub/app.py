"""The composition root: builds every dependency from the settings and the faust app.

Real adapters are wired by default; unit tests call the stage handlers directly
with fakes. One worker process runs:

- the ingress (pattern subscription over every member's submissions topic), routing
  each accepted schema as the declared flows say (``routes_of(FLOWS)``),
- one transactional stage runner per stage of every declared flow (``hub/flows.py``),
- one forwarder per delay tier (retries and status polls wait there),
- the flow-state agent (a faust agent) and one faust timer per declared flow timer.

No flow, stage or partner is named here: they come from the declarations.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from aiokafka import TopicPartition
from mode import Service

from agents import flow_state
from agents.ingress.gateway import ingress_runner
from agents.ingress.handler import IngressCounters, IngressDeps
from hub.flows import FLOWS
from relais.blobs.filesystem import FilesystemBlobStore
from relais.controls import ConnectorControls
from relais.flows.kit import (
    Flow,
    FlowRuntime,
    HubContext,
    Lifecycle,
    Stage,
    Timer,
    machines_of,
    routes_of,
    stage_inputs,
)
from relais.flows.machine import FlowMachine
from relais.flows.outbound import Outbound
from relais.flows.progress import DEFAULT_MACHINE, machine_for
from relais.kafka.clients import faust_credentials
from relais.kafka.publisher import Publisher
from relais.logs import READY_LINE, configure_logging
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.stages.delay_forwarder import DelayForwarder
from relais.stages.delays import TIERS
from relais.stages.failures import FailureRouter, RetryPolicy, parse_tiers, partner_policies
from relais.stages.records import InputRecord
from relais.stages.runner import DEFAULT_FETCH_MAX_WAIT_MS, DEFAULT_MAX_RECORDS, StageRunner
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import dlq

log = structlog.get_logger(__name__)


@dataclass
class RunningFlow:
    """One declared flow and what its ``build`` made."""

    flow: Flow
    runtime: FlowRuntime


@dataclass
class HubDependencies:
    """Everything the hub's stages share, started in order and stopped in reverse."""

    settings: Settings
    codec: AvroCodec
    members: MemberDirectory
    blobs: FilesystemBlobStore
    journal: Publisher
    controls: ConnectorControls
    ingress_counters: IngressCounters
    flows: list[RunningFlow] = field(default_factory=list)
    views: list[Lifecycle] = field(default_factory=list)
    runners: list[Lifecycle] = field(default_factory=list)
    stage_runners: dict[str, StageRunner] = field(default_factory=dict)

    async def start(self) -> None:
        await self.journal.start()
        for view in self.views:
            await view.start()
        for runner in self.runners:
            await runner.start()
        log.info("hub.started", stages=list(self.stage_runners), members=len(self.members),
                 flows=[running.flow.name for running in self.flows])

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.stop()
        for view in reversed(self.views):
            await view.stop()
        for running in reversed(self.flows):
            for close in running.runtime.closers:
                try:
                    await close()
                except Exception as exc:  # one flow's closer must not keep the others open
                    log.warning("hub.flow_close_failed", flow=running.flow.name,
                                error=f"{type(exc).__name__}: {exc}")
        await self.journal.stop()


class _RetryPolicies:
    """The retry policy of a stage (its partner's, else the hub's) and of a member (its
    own, when the member directory gives it one)."""

    def __init__(self, settings: Settings, members: MemberDirectory) -> None:
        self._default = RetryPolicy(parse_tiers(settings.retry_tiers))
        self._partners = partner_policies(settings.partner_retry_tiers)
        self._members = members

    def for_partner(self, partner: str | None) -> RetryPolicy:
        if partner is None:
            return self._default
        return self._partners.get(partner, self._default)

    def for_member(self, siren: str | None) -> RetryPolicy | None:
        member = self._members.get(siren) if siren else None
        if member is None or not member.retry_tiers:
            return None
        return RetryPolicy(parse_tiers(member.retry_tiers))


def stage_runner(
    settings: Settings,
    codec: AvroCodec,
    stage: Stage,
    deps: Any,
    controls: ConnectorControls,
    policy: RetryPolicy,
    member_policy: Callable[[str | None], RetryPolicy | None] | None = None,
    machine: FlowMachine = DEFAULT_MACHINE,
) -> StageRunner:
    """The transactional runner of one declared stage: consumer group
    ``<app id>-<stage>``, failures reported as flows of the stage's flow type to
    ``relais.dlq.<stage>``, input held while the stage's partner is paused."""
    group_id = f"{settings.app_id}-{stage.name}"
    partner = stage.partner
    handle = stage.handler

    async def handler(record: InputRecord) -> list[Outbound]:
        return await handle(record, deps)

    hook = stage.on_assigned

    async def on_assigned(partitions: set[TopicPartition]) -> None:
        if hook is not None:
            await hook(deps, {(tp.topic, tp.partition) for tp in partitions})

    return StageRunner(
        settings.bootstrap_servers, stage=stage.name, group_id=group_id, handler=handler,
        router=FailureRouter(stage=stage.name, group_id=group_id, flow_type=stage.flow_type,
                             dlq_topic=dlq(stage.name).name, codec=codec, policy=policy,
                             policy_for=member_policy, machine=machine),
        topics=(stage.input.name,),
        paused=(lambda: controls.paused(partner)) if partner else None,
        on_assigned=on_assigned if hook is not None else None,
        max_records=stage.max_batch_records or DEFAULT_MAX_RECORDS,
        fetch_max_wait_ms=stage.fetch_max_wait_ms or DEFAULT_FETCH_MAX_WAIT_MS,
        overlap_commits=settings.stage_overlap_commits,
    )


def build_dependencies(
    settings: Settings, flows: Sequence[Flow] = FLOWS
) -> HubDependencies:
    """Every dependency of one worker running ``flows`` (default: :data:`hub.flows.FLOWS`):
    each flow's ``build`` from one shared :class:`HubContext`, one stage runner per
    declared stage, the ingress with the flows' routes, one forwarder per delay tier
    (allowed to forward to the declared stages' inputs only)."""
    codec = AvroCodec()
    bootstrap = settings.bootstrap_servers
    members = MemberDirectory(bootstrap, codec)
    blobs = FilesystemBlobStore(settings.blob_dir)
    journal = Publisher(bootstrap, codec, client_id=f"{settings.app_id}-journal")
    controls = ConnectorControls(bootstrap, codec)
    context = HubContext(settings=settings, codec=codec, members=members, blobs=blobs,
                         journal=journal, controls=controls)
    policies = _RetryPolicies(settings, members)
    running = [RunningFlow(flow, flow.build(context)) for flow in flows]

    ingress_counters = IngressCounters()
    stages: dict[str, StageRunner] = {
        "ingress": ingress_runner(
            bootstrap,
            IngressDeps(codec=codec, members=members, blobs=blobs,
                        max_submission_bytes=settings.max_submission_bytes,
                        counters=ingress_counters, routes=routes_of(flows),
                        machines=machines_of(flows)),
            group_id=f"{settings.app_id}-ingress",
            overlap_commits=settings.stage_overlap_commits,
        ),
    }
    for flow_run in running:
        for stage in flow_run.flow.stages:
            stages[stage.name] = stage_runner(
                settings, codec, stage, flow_run.runtime.deps, controls,
                policies.for_partner(stage.partner), policies.for_member,
                machine=machine_for(machines_of(flows), stage.flow_type),
            )
    targets = frozenset(stage_inputs(flows).values())
    forwarders = [DelayForwarder(bootstrap, t, group_id=f"{settings.app_id}-delay-{t.label}",
                                 targets=targets)
                  for t in TIERS]
    flow_views = [view for flow_run in running for view in flow_run.runtime.views]
    return HubDependencies(
        settings=settings, codec=codec, members=members, blobs=blobs, journal=journal,
        controls=controls, ingress_counters=ingress_counters, flows=running,
        views=[members, controls, *flow_views],
        runners=[*forwarders, *stages.values()],
        stage_runners=stages,
    )


def timer_job(hub: HubDependencies, timer: Timer, deps: Any) -> Callable[[], Awaitable[None]]:
    """One round of a declared timer: skipped until the member directory is loaded and
    while the timer's partner is paused."""

    async def run() -> None:
        if not hub.members.ready.is_set():
            return
        if timer.partner is not None and hub.controls.paused(timer.partner):
            log.debug("hub.timer_paused", timer=timer.name, partner=timer.partner)
            return
        await timer.run(deps)

    run.__name__ = run.__qualname__ = f"timer_{timer.name.replace('-', '_')}"
    return run


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
    flow_state.register(app, hub.codec, settings.bootstrap_servers,
                       machines=machines_of(run.flow for run in hub.flows))

    for flow_run in hub.flows:
        for timer in flow_run.flow.timers:
            app.timer(timer.every_seconds(settings), on_leader=timer.on_leader,
                      name=timer.name)(
                timer_job(hub, timer, flow_run.runtime.deps))

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
