"""The hub's own topics, each declared once. Agents import these objects; no other
module spells a topic name.

===========================  ==========  ======================  ==========================
topic                        key         value                   written by → read by
===========================  ==========  ======================  ==========================
relais.members               SIREN       Member                  CLI → every hub process
relais.acts.submitted        SIREN       ActeSubmission          ingress → acts-validation
relais.acts.delivery         flow id     ActeSubmission          validation → delivery
relais.acts.status           flow id     ActeStatusCheck         delay tiers → acts-status
relais.acts.followups        SIREN       ActeFollowUp            ingress → acts-followup
relais.acts.links            flow id     ActeLink                acts stages → acts stages
relais.acts.classifications  SIREN       ClassificationSnapshot  validation → validation
relais.flows.events          flow id     FlowState               every stage → flow-state
relais.flows.state           flow id     FlowState               flow-state → `relais flows`
relais.delay.<tier>          (original)  (original)              retries, polls → forwarders
relais.dlq.<stage>           (original)  (original)              every stage → operators
relais.ops.audit             record ref  AuditEntry              operator tools → auditors
relais.ops.controls          partner     ConnectorControl        `relais connector` → stages
===========================  ==========  ======================  ==========================

Per-member topics are in :mod:`topics.member`; delay tiers in
:mod:`relais.stages.delays`; faust's own leader topic in :func:`faust_internal_topics`.
"""

from __future__ import annotations

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

ACTS_SUBMITTED = TopicSpec(
    name="relais.acts.submitted",
    partitions=HUB_PARTITIONS,
    key="member SIREN (string): one member's actes are checked in order, on one partition",
    value_schema="ActeSubmission",
    doc="Actes whose envelope the ingress accepted, waiting for the acte checks.",
)

ACTS_DELIVERY = TopicSpec(
    name="relais.acts.delivery",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="ActeSubmission",
    doc="Validated actes waiting to be posted to their member's TdT.",
)

ACTS_FOLLOWUPS = TopicSpec(
    name="relais.acts.followups",
    partitions=HUB_PARTITIONS,
    key="member SIREN (string)",
    value_schema="ActeFollowUp",
    doc="Members' cancellations and replies to prefecture messages, waiting to go to the TdT.",
)

ACTS_STATUS = TopicSpec(
    name="relais.acts.status",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="ActeStatusCheck",
    doc="Posted actes whose TdT status is due for a poll.",
)

ACTS_LINKS = TopicSpec(
    name="relais.acts.links",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="ActeLink",
    doc="Each acte's IDActe, TdT transaction and delivery step (the delivery journal).",
    cleanup_policy="compact",
)

ACTS_CLASSIFICATIONS = TopicSpec(
    name="relais.acts.classifications",
    partitions=1,
    key="member SIREN (string)",
    value_schema="ClassificationSnapshot",
    doc="Each member's current @CTES classification (7-2), as fetched from its TdT.",
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

STAGES: tuple[str, ...] = (
    "ingress", "acts-validation", "acts-delivery", "acts-status", "acts-followup",
    "acts-prefecture",
)

#: The partner each stage calls; pausing the partner holds these stages.
STAGE_PARTNERS: dict[str, str] = {"acts-validation": "tdt", "acts-delivery": "tdt",
                                  "acts-status": "tdt", "acts-followup": "tdt"}


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


INGRESS_DEADLETTER = dlq("ingress")

HUB_TOPICS: tuple[TopicSpec, ...] = (
    MEMBERS,
    ACTS_SUBMITTED,
    ACTS_DELIVERY,
    ACTS_STATUS,
    ACTS_FOLLOWUPS,
    ACTS_LINKS,
    ACTS_CLASSIFICATIONS,
    FLOW_EVENTS,
    FLOW_STATE,
    OPS_AUDIT,
    OPS_CONTROLS,
    *(dlq(stage) for stage in STAGES),
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


def hub_topics(app_id: str) -> tuple[TopicSpec, ...]:
    """Every hub-level topic for a hub whose consumer group is ``app_id``."""
    return HUB_TOPICS + faust_internal_topics(app_id)
