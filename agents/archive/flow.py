"""The archive flow as the hub runs it: SEDA transfers to the members' archives (Vitam's
external ingest API, ``connectors/archive``), explicit (``ArchiveSubmission``) or
automatic (every acknowledged acte of a member whose archive account says
``auto_archive=true``).

Stages: ``archive-delivery`` (build, validate, send exactly once), ``archive-status``
(poll the operation, read the ATR), ``archive-dossier`` and ``archive-acts`` (the
automatic archiving of acknowledged actes, :mod:`agents.archive.acts`).
"""

from __future__ import annotations

from typing import Any

from agents.archive.acts import ACTS_STAGE, DOSSIER_STAGE, handle_dossier, handle_flow_event
from agents.archive.delivery import STAGE as DELIVERY
from agents.archive.delivery import handle_submitted
from agents.archive.deps import JOURNAL_KEYS, ArchiveDeps
from agents.archive.machines import MACHINES
from agents.archive.status import STAGE as STATUS
from agents.archive.status import handle_status
from connectors.archive.registry import archive_connectors
from connectors.archive.settings import ARCHIVE as PARTNER
from connectors.tdt.registry import TdtConnectors
from relais.flows.kit import Flow, FlowRuntime, HubContext, Route, Stage
from relais.journal.view import JournalView
from relais.kafka.compacted_view import CompactedView
from relais.stages.failures import parse_tiers
from topics.acts import ACTS_DELIVERY
from topics.archive import ARCHIVE_DOSSIERS, ARCHIVE_STATUS, ARCHIVE_SUBMITTED, ARCHIVE_TOPICS
from topics.catalogue import FLOW_EVENTS


def build(ctx: HubContext) -> FlowRuntime:
    """The archive stages' dependencies: the delivery journal's view, the acte dossiers,
    one archive connector per member account and the TdT connectors (closed at the end)."""
    settings = ctx.settings
    journal = JournalView(settings.bootstrap_servers, ctx.codec, JOURNAL_KEYS)
    dossiers: CompactedView[dict[str, Any]] = CompactedView(
        settings.bootstrap_servers, ctx.codec, topic=ARCHIVE_DOSSIERS.name,
        schema_name="ActeSubmission", parse=lambda record: record)
    archives = archive_connectors()
    tdt = TdtConnectors(timeout=settings.tdt_timeout_seconds)
    deps = ArchiveDeps(
        codec=ctx.codec, members=ctx.members, blobs=ctx.blobs, journal=journal,
        publisher=ctx.journal, archives=archives, dossiers=dossiers,
        poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",), extra={"tdt": tdt},
    )
    return FlowRuntime(deps=deps, views=[journal, dossiers],
                       closers=[archives.aclose, tdt.aclose])


ARCHIVE = Flow(
    name="archive",
    partner=PARTNER,
    machines=MACHINES,
    routes=(Route("ArchiveSubmission", ARCHIVE_SUBMITTED, "archive"),),
    stages=(
        Stage(DELIVERY, ARCHIVE_SUBMITTED, handle_submitted, "archive", PARTNER),
        Stage(STATUS, ARCHIVE_STATUS, handle_status, "archive", PARTNER),
        Stage(DOSSIER_STAGE, ACTS_DELIVERY, handle_dossier, "archive"),
        Stage(ACTS_STAGE, FLOW_EVENTS, handle_flow_event, "archive", PARTNER),
    ),
    topics=ARCHIVE_TOPICS,
    build=build,
)
