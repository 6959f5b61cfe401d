"""The hub's own topics, each declared once. Agents import these objects; no other
module spells a topic name.

| topic                        | key       | value          | written by        | read by                 |
|------------------------------|-----------|----------------|-------------------|-------------------------|
| relais.members               | SIREN     | Member         | `relais members`  | every hub process       |
| relais.acts.submitted        | flow id   | ActeSubmission | ingress           | acts-delivery           |
| relais.flows.events          | flow id   | FlowState      | every stage       | flow-state, operators   |
| relais.flows.state           | flow id   | FlowState      | flow-state        | `relais flows`          |
| relais.ingress.deadletter    | (orig.)   | raw            | ingress           | operators (`relais dlq`)|

faust's own leader topic is declared by :func:`faust_internal_topics`.

Per-member topics are in :mod:`topics.member`.
"""

from __future__ import annotations

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
    key="flow id (string)",
    value_schema="ActeSubmission",
    doc="Actes whose envelope the ingress accepted, waiting for acts validation and delivery.",
)

FLOW_EVENTS = TopicSpec(
    name="relais.flows.events",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="FlowState",
    doc="Every state transition of every flow, in order per flow.",
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

INGRESS_DEADLETTER = TopicSpec(
    name="relais.ingress.deadletter",
    partitions=HUB_PARTITIONS,
    key="original key, byte for byte",
    value_schema="raw",
    doc="Submissions the ingress could not even attribute to a member, kept byte for byte "
    "with error-context headers.",
    retention_ms=30 * DAY_MS,
    max_message_bytes=2 * 1024 * 1024,
)

HUB_TOPICS: tuple[TopicSpec, ...] = (
    MEMBERS,
    ACTS_SUBMITTED,
    FLOW_EVENTS,
    FLOW_STATE,
    INGRESS_DEADLETTER,
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
