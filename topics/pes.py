"""The PES flow's topics (Hélios PES_Aller to the comptable through a TdT), each declared once.

==========================  ==========  ======================  ==========================
topic                       key         value                   written by → read by
==========================  ==========  ======================  ==========================
relais.pes.submitted        SIREN       PesSubmission           ingress → pes-validation
relais.pes.delivery         flow id     PesSubmission           pes-validation → delivery
relais.pes.status           flow id     PesStatusCheck          delay tiers → pes-status
relais.journal.deliveries   flow id     JournalEntry            pes stages → pes stages
==========================  ==========  ======================  ==========================

The PES flow declares them (``agents.pes.flow.PES``). The kernel never imports this module.
"""

from __future__ import annotations

from topics.catalogue import HUB_PARTITIONS
from topics.journal import DELIVERY_JOURNAL
from topics.spec import TopicSpec

PES_SUBMITTED = TopicSpec(
    name="relais.pes.submitted",
    partitions=HUB_PARTITIONS,
    key="member SIREN (string): one member's PES files are checked in order, on one partition",
    value_schema="PesSubmission",
    doc="PES_Aller files whose envelope the ingress accepted, waiting for the PES checks.",
)

PES_DELIVERY = TopicSpec(
    name="relais.pes.delivery",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="PesSubmission",
    doc="Checked PES_Aller files waiting to be imported into their member's TdT (Hélios).",
)

PES_STATUS = TopicSpec(
    name="relais.pes.status",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="PesStatusCheck",
    doc="Imported PES files whose Hélios status is due for a poll.",
)

#: Every topic of the PES flow, in the order ``relais topics apply`` creates them.
PES_TOPICS: tuple[TopicSpec, ...] = (PES_SUBMITTED, PES_DELIVERY, PES_STATUS, DELIVERY_JOURNAL)
