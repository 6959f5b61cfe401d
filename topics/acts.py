"""The acts flow's topics (actes to the préfecture through a TdT), each declared once.

==========================  ==========  ======================  ==========================
topic                       key         value                   written by → read by
==========================  ==========  ======================  ==========================
relais.acts.submitted       SIREN       ActeSubmission          ingress → acts-validation
relais.acts.delivery        flow id     ActeSubmission          validation → delivery
relais.acts.status          flow id     ActeStatusCheck         delay tiers → acts-status
relais.acts.followups       SIREN       ActeFollowUp            ingress → acts-followup
relais.journal.deliveries   flow id     JournalEntry            acts stages → acts stages
relais.acts.classifications SIREN       ClassificationSnapshot  validation → validation
==========================  ==========  ======================  ==========================

The acts flow declares them (``agents.acts.flow.ACTS``); the hub's catalogue gets
them from that declaration. The kernel (``relais``) never imports this module.
"""

from __future__ import annotations

from topics.catalogue import HUB_PARTITIONS
from topics.journal import DELIVERY_JOURNAL
from topics.spec import TopicSpec

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

ACTS_CLASSIFICATIONS = TopicSpec(
    name="relais.acts.classifications",
    partitions=1,
    key="member SIREN (string)",
    value_schema="ClassificationSnapshot",
    doc="Each member's current @CTES classification (7-2), as fetched from its TdT.",
    cleanup_policy="compact",
)

#: Every topic of the acts flow, in the order ``relais topics apply`` creates them.
ACTS_TOPICS: tuple[TopicSpec, ...] = (
    ACTS_SUBMITTED, ACTS_DELIVERY, ACTS_STATUS, ACTS_FOLLOWUPS, DELIVERY_JOURNAL,
    ACTS_CLASSIFICATIONS,
)
