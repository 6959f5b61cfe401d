"""The hub's own topics, each declared once. Agents import these objects; no other
module spells a topic name.

===========================  ==========  ======================  ==========================
topic                        key         value                   written by → read by
===========================  ==========  ======================  ==========================
relais.members               SIREN       Member                  CLI → every hub process
relais.flows.events          flow id     FlowState               every stage → flow-state
relais.flows.state           flow id     FlowState               flow-state → `relais flows`
relais.delay.<tier>          (original)  (original)              retries, polls → forwarders
relais.dlq.<stage>           (original)  (original)              every stage → operators
relais.ops.audit             record ref  AuditEntry              operator tools → auditors
relais.ops.controls          partner     ConnectorControl        `relais connector` → stages
===========================  ==========  ======================  ==========================

These are the kernel's topics: every hub has them whatever flows it runs. A flow's
own topics live with its declaration (the acts': :mod:`topics.acts`) and reach the
catalogue through :func:`hub_topics`, with one ``relais.dlq.<name>`` per declared
stage and timer. Per-member topics are in :mod:`topics.member`; delay tiers in
:mod:`topics.delays`; faust's own leader topic in :func:`faust_internal_topics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from topics.delays import TIERS
from topics.spec import DAY_MS, TopicSpec

HUB_PARTITIONS = 3

MEMBERS = TopicSpec(
    name="relais.members",
    partitions=1,
    key="member SIREN (string)",
    value_schema="Member",
    doc="The member registry; compacted, read whole by every hub process as a global table.",
    cleanup_policy="compact",
)

FLOW_EVENTS = TopicSpec(
    name="relais.flows.events",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="FlowState",
    doc="Every state transition and child event of every flow, in order per flow.",
    retention_ms=90 * DAY_MS,
)

FLOW_STATE = TopicSpec(
    name="relais.flows.state",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="FlowState",
    doc="The latest state of each flow (compacted).",
    cleanup_policy="compact",
)

OPS_AUDIT = TopicSpec(
    name="relais.ops.audit",
    partitions=1,
    key="the audited record (topic:partition:offset) or object",
    value_schema="AuditEntry",
    doc="Every operator action (replays, refusals, connector pauses): who, when, what, why.",
    retention_ms=5 * 365 * DAY_MS,
)

OPS_CONTROLS = TopicSpec(
    name="relais.ops.controls",
    partitions=1,
    key="partner name (string)",
    value_schema="ConnectorControl",
    doc="Connector pauses: a paused partner's stages hold their input; flows wait, not fail.",
    cleanup_policy="compact",
)

def dlq(stage: str) -> TopicSpec:
    """The dead-letter topic of one stage."""
    return TopicSpec(
        name=f"relais.dlq.{stage}",
        partitions=HUB_PARTITIONS,
        key="the failed record's key, byte for byte",
        value_schema="raw",
        doc=f"Records the {stage} stage gave up on, byte for byte, with error-context headers.",
        retention_ms=30 * DAY_MS,
        max_message_bytes=4 * 1024 * 1024,
    )


#: The ingress is a kernel stage (every hub has it): its dead letters are the
#: submissions it could not even judge.
INGRESS_STAGE = "ingress"
INGRESS_DEADLETTER = dlq(INGRESS_STAGE)

#: The kernel's own topics: what every hub has whatever flows it runs (the flows'
#: topics and their stages' dead-letter topics come from their declarations).
KERNEL_TOPICS: tuple[TopicSpec, ...] = (
    MEMBERS,
    FLOW_EVENTS,
    FLOW_STATE,
    OPS_AUDIT,
    OPS_CONTROLS,
    INGRESS_DEADLETTER,
    *(t.topic for t in TIERS),
)


def faust_internal_topics(app_id: str) -> tuple[TopicSpec, ...]:
    """Topics faust itself uses; declared here because the broker never auto-creates."""
    return (
        TopicSpec(
            name=f"{app_id}-__assignor-__leader",
            partitions=1,
            key="(faust internal)",
            value_schema="raw",
            doc="faust's leader election among hub workers.",
        ),
    )


class DeclaresTopics(Protocol):
    """What the catalogue reads of a flow declaration (``relais.flows.kit.Flow``; the
    topic layer imports nothing of the kernel, so it names the shape, not the class)."""

    @property
    def topics(self) -> tuple[TopicSpec, ...]: ...

    def stage_names(self) -> tuple[str, ...]: ...


def hub_topics(app_id: str, flows: Iterable[DeclaresTopics]) -> tuple[TopicSpec, ...]:
    """Every hub-level topic for a hub whose consumer group is ``app_id`` running
    ``flows``: the kernel's, each flow's own (once each by name), one dead-letter topic
    per declared stage and timer, and faust's."""
    declared = tuple(flows)
    own: dict[str, TopicSpec] = {}
    for flow in declared:
        for spec in flow.topics:
            own.setdefault(spec.name, spec)
    return (
        *KERNEL_TOPICS,
        *own.values(),
        *(dlq(name) for flow in declared for name in flow.stage_names()),
        *faust_internal_topics(app_id),
    )
