"""The acts stages' dependencies for operator commands (``relais flows resolve``,
``relais classification refresh``), built from the settings as the composition root
builds the worker's.

A command starts only what it uses and passes it in; the other adapters are built but
never started, so they neither connect nor call a partner.
"""

from __future__ import annotations

from typing import Any

from agents.acts.deps import ActsDeps
from agents.acts.links import LinkIndex
from connectors.tdt.registry import TdtConnectors
from relais.blobs.filesystem import FilesystemBlobStore
from relais.kafka.compacted_view import CompactedView
from relais.kafka.publisher import Publisher
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.stages.failures import parse_tiers
from relais.wire.avro_codec import AvroCodec
from topics.acts import ACTS_CLASSIFICATIONS


def classifications_view(settings: Settings, codec: AvroCodec) -> CompactedView[dict[str, Any]]:
    """The kept classification snapshots (``relais.acts.classifications``), by SIREN."""
    return CompactedView(settings.bootstrap_servers, codec, topic=ACTS_CLASSIFICATIONS.name,
                         schema_name="ClassificationSnapshot", parse=lambda record: record)


def operator_acts_deps(
    settings: Settings,
    codec: AvroCodec,
    *,
    members: MemberDirectory | None = None,
    classifications: CompactedView[dict[str, Any]] | None = None,
    journal: Publisher | None = None,
    connectors: TdtConnectors | None = None,
) -> ActsDeps:
    bootstrap = settings.bootstrap_servers
    return ActsDeps(
        codec=codec,
        members=members or MemberDirectory(bootstrap, codec),
        blobs=FilesystemBlobStore(settings.blob_dir),
        links=LinkIndex(bootstrap, codec),
        classifications=classifications or classifications_view(settings, codec),
        connectors=connectors or TdtConnectors(timeout=settings.tdt_timeout_seconds),
        journal=journal or Publisher(bootstrap, codec, client_id="relais-cli"),
        poll_schedule=parse_tiers(settings.poll_tiers) or ("5s",),
    )
