"""The signature flow's topics (a member's i-Parapheur signs an acte before it leaves).

==========================  ==========  ======================  ==============================
topic                       key         value                   written by → read by
==========================  ==========  ======================  ==============================
relais.signature.requests   flow id     ActeSubmission          acts-validation → signature-create
relais.signature.status     flow id     SignatureCheck          delay tiers → signature-status
relais.journal.deliveries   flow/partner JournalEntry           signature stages → acts-delivery
==========================  ==========  ======================  ==============================

A signed acte goes on to ``relais.acts.delivery`` (the acts flow's topic).
"""

from __future__ import annotations

from topics.catalogue import HUB_PARTITIONS
from topics.journal import DELIVERY_JOURNAL
from topics.spec import TopicSpec

SIGNATURE_REQUESTS = TopicSpec(
    name="relais.signature.requests",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="ActeSubmission",
    doc="Validated actes whose member signs them in i-Parapheur before the TdT.",
)

SIGNATURE_STATUS = TopicSpec(
    name="relais.signature.status",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="SignatureCheck",
    doc="i-Parapheur dossiers whose history (GetHistoDossier) is due for a poll.",
)

#: Every topic of the signature flow.
SIGNATURE_TOPICS: tuple[TopicSpec, ...] = (SIGNATURE_REQUESTS, SIGNATURE_STATUS, DELIVERY_JOURNAL)
