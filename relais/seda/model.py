"""What an ``ArchiveTransfer`` is made of, independent of the XML that carries it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class SedaVersion(StrEnum):
    """The SEDA versions Relais writes (per member setting, account option ``seda_version``)."""

    V2_1 = "2.1"
    V2_2 = "2.2"

    @property
    def namespace(self) -> str:
        return f"fr:gouv:culture:archivesdefrance:seda:v{self.value}"


@dataclass(frozen=True)
class DataFile:
    """One file of the transfer: one ``BinaryDataObject`` (in its own ``DataObjectGroup``).

    ``object_id`` is the XML id (``ID`` + a number: an NCName), ``path`` the zip entry
    (``content/<object_id>.<ext>``); ``filename`` the original name, kept in ``FileInfo``.
    """

    object_id: str
    path: str
    filename: str
    sha512: str
    size: int
    mime_type: str
    pronom: str | None = None
    format_name: str | None = None
    last_modified: datetime | None = None
    blob_sha256: str = ""


@dataclass(frozen=True)
class Rule:
    """An access or appraisal rule of the archive's referential (e.g. ``ACC-00002``)."""

    rule: str
    start_date: date | None = None


@dataclass(frozen=True)
class Keyword:
    content: str
    kind: str | None = None
    """SEDA ``KeywordType``: corpname, famname, geogname, name, occupation, persname,
    subject, genreform, function."""


@dataclass
class Unit:
    """An ``ArchiveUnit``: its description, the files it holds and its children."""

    unit_id: str
    title: str
    level: str = "Item"
    description: str | None = None
    keywords: tuple[Keyword, ...] = ()
    originating_agency: str | None = None
    created: date | None = None
    start_date: date | None = None
    end_date: date | None = None
    document_type: str | None = None
    files: list[DataFile] = field(default_factory=list)
    children: list[Unit] = field(default_factory=list)
    access_rule: Rule | None = None

    def walk(self) -> list[Unit]:
        """This unit and every descendant, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass
class Transfer:
    """One ``ArchiveTransfer``: the header, the units and the agencies."""

    version: SedaVersion
    message_identifier: str
    date: datetime
    archival_agency: str
    transferring_agency: str
    originating_agency: str
    units: list[Unit]
    archival_agreement: str | None = None
    archival_profile: str | None = None
    submission_agency: str | None = None
    comment: str | None = None
    access_rule: Rule | None = None
    appraisal_rule: Rule | None = None
    appraisal_final_action: str = "Keep"

    def files(self) -> list[DataFile]:
        return [f for unit in self.units for u in unit.walk() for f in u.files]
