"""From a description of what to archive to a validated SIP ready to stream.

:func:`prepare_sip` reads each document once from the blob store (SHA-512, CRC-32, size,
first bytes: nothing kept), numbers units and objects (``AU1…``, ``ID1…``), builds the
manifest and validates it against the official schema off the event loop. The
:class:`Sip` it returns streams the zip with a second read of each blob
(:func:`relais.seda.sip.write_sip`), so memory stays flat whatever the document size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from relais.seda.formats import extension, identify
from relais.seda.manifest import build_manifest
from relais.seda.model import DataFile, Keyword, Rule, SedaVersion, Transfer, Unit
from relais.seda.sip import SipEntry, bytes_entry, digest_stream, sip_length, write_sip
from relais.seda.xsd import validate_async

Opener = Callable[[str], AsyncIterator[bytes]]
MANIFEST_NAME = "manifest.xml"


@dataclass(frozen=True)
class DocumentSpec:
    """A document to archive: a blob of the store and its original name."""

    blob_sha256: str
    filename: str
    media_type: str
    last_modified: datetime | None = None


@dataclass(frozen=True)
class UnitSpec:
    """An archive unit to create, with its documents and sub-units."""

    title: str
    level: str = "Item"
    description: str | None = None
    keywords: tuple[Keyword, ...] = ()
    document_type: str | None = None
    created: date | None = None
    start_date: date | None = None
    end_date: date | None = None
    documents: tuple[DocumentSpec, ...] = ()
    children: tuple[UnitSpec, ...] = ()
    access_rule: Rule | None = None


@dataclass(frozen=True)
class TransferSpec:
    """The transfer's header and agencies (per member settings) and its root units."""

    version: SedaVersion
    message_identifier: str
    archival_agency: str
    transferring_agency: str
    originating_agency: str
    units: tuple[UnitSpec, ...]
    archival_agreement: str | None = None
    archival_profile: str | None = None
    submission_agency: str | None = None
    comment: str | None = None
    access_rule: Rule | None = None
    appraisal_rule: Rule | None = None
    appraisal_final_action: str = "Keep"


@dataclass
class Sip:
    """A validated transfer: its manifest and the zip to stream (see :meth:`stream`)."""

    transfer: Transfer
    manifest: bytes
    entries: list[SipEntry] = field(default_factory=list)

    @property
    def message_identifier(self) -> str:
        return self.transfer.message_identifier

    @property
    def length(self) -> int:
        return sip_length(self.entries)

    def stream(self) -> AsyncIterator[bytes]:
        return write_sip(self.entries)


class _Numbering:
    def __init__(self) -> None:
        self.units = 0
        self.objects = 0


async def _data_file(opener: Opener, doc: DocumentSpec, numbering: _Numbering
                     ) -> tuple[DataFile, SipEntry]:
    numbering.objects += 1
    object_id = f"ID{numbering.objects}"
    digest = await digest_stream(opener(doc.blob_sha256))
    pronom, format_name = identify(doc.media_type, digest.head)
    path = f"content/{object_id}.{extension(doc.filename, doc.media_type)}"
    data = DataFile(object_id=object_id, path=path, filename=doc.filename, sha512=digest.sha512,
                    size=digest.size, mime_type=doc.media_type, pronom=pronom,
                    format_name=format_name, last_modified=doc.last_modified,
                    blob_sha256=doc.blob_sha256)
    sha = doc.blob_sha256
    return data, SipEntry(path, digest.size, digest.crc32, lambda: opener(sha))


async def _unit(opener: Opener, spec: UnitSpec, originating: str, numbering: _Numbering,
                entries: list[SipEntry]) -> Unit:
    numbering.units += 1
    unit = Unit(unit_id=f"AU{numbering.units}", title=spec.title, level=spec.level,
                description=spec.description, keywords=spec.keywords,
                originating_agency=originating, created=spec.created,
                start_date=spec.start_date, end_date=spec.end_date,
                document_type=spec.document_type, access_rule=spec.access_rule)
    for doc in spec.documents:
        data, entry = await _data_file(opener, doc, numbering)
        unit.files.append(data)
        entries.append(entry)
    for child in spec.children:
        unit.children.append(await _unit(opener, child, originating, numbering, entries))
    return unit


async def prepare_sip(spec: TransferSpec, opener: Opener, *, now: datetime) -> Sip:
    """Digest every document, build the manifest and validate it.

    Raises :class:`relais.seda.xsd.ManifestInvalidError` when the manifest fails the
    official schema (a bug: the stage dead-letters it with the schema's errors).
    """
    numbering = _Numbering()
    entries: list[SipEntry] = []
    units = [await _unit(opener, unit, spec.originating_agency, numbering, entries)
             for unit in spec.units]
    transfer = Transfer(
        version=spec.version, message_identifier=spec.message_identifier, date=now,
        archival_agency=spec.archival_agency, transferring_agency=spec.transferring_agency,
        originating_agency=spec.originating_agency, units=units,
        archival_agreement=spec.archival_agreement, archival_profile=spec.archival_profile,
        submission_agency=spec.submission_agency, comment=spec.comment,
        access_rule=spec.access_rule, appraisal_rule=spec.appraisal_rule,
        appraisal_final_action=spec.appraisal_final_action,
    )
    manifest = build_manifest(transfer)
    await validate_async(manifest, spec.version)
    return Sip(transfer, manifest, [bytes_entry(MANIFEST_NAME, manifest), *entries])
