"""The archive flow's topics (SEDA transfers to the member's archive), each declared once.

===========================  ==========  ======================  ===============================
topic                        key         value                   written by → read by
===========================  ==========  ======================  ===============================
relais.archive.submitted     SIREN       ArchiveSubmission       ingress, archive-acts →
                                                                 archive-delivery
relais.archive.status        flow id     ArchiveStatusCheck      delay tiers → archive-status
relais.archive.dossiers      flow id     ActeSubmission          archive-dossier → archive-acts
                                                                 (compacted: an acte's documents)
relais.journal.deliveries    flow id     JournalEntry            archive stages
===========================  ==========  ======================  ===============================

The archive flow declares them (``agents.archive.flow.ARCHIVE``). The kernel never imports
this module.
"""

from __future__ import annotations

from topics.catalogue import HUB_PARTITIONS
from topics.journal import DELIVERY_JOURNAL
from topics.spec import TopicSpec

ARCHIVE_SUBMITTED = TopicSpec(
    name="relais.archive.submitted",
    partitions=HUB_PARTITIONS,
    key="member SIREN (string): one member's transfers are built in order, on one partition",
    value_schema="ArchiveSubmission",
    doc="Archive transfers whose envelope the ingress accepted (or that the automatic "
    "archiving of acknowledged actes made), waiting to be built and sent.",
)

ARCHIVE_STATUS = TopicSpec(
    name="relais.archive.status",
    partitions=HUB_PARTITIONS,
    key="flow id (string)",
    value_schema="ArchiveStatusCheck",
    doc="Polls of the archive's ingest operations (forwarded from the delay tiers when due).",
)

ARCHIVE_DOSSIERS = TopicSpec(
    name="relais.archive.dossiers",
    partitions=HUB_PARTITIONS,
    key="acte flow id (string)",
    value_schema="ActeSubmission",
    doc="The acte submissions sent to the TdT (acte, annexes, metadata), kept by flow id so an "
    "acknowledged acte can be archived with its documents.",
    cleanup_policy="compact",
)

#: Every topic of the archive flow, in the order ``relais topics apply`` creates them.
ARCHIVE_TOPICS: tuple[TopicSpec, ...] = (ARCHIVE_SUBMITTED, ARCHIVE_STATUS, ARCHIVE_DOSSIERS,
                                         DELIVERY_JOURNAL)
