"""Write an ``ArchiveTransfer`` manifest (SEDA 2.1 or 2.2) from a :class:`Transfer`.

Element order follows the official schemas (``seda-2.x-main.xsd``, ``-technical``,
``-management``, ``-ontology``): every file is one ``BinaryDataObject`` in its own
``DataObjectGroup`` (allowed by both versions), referenced from its unit by
``DataObjectReference/DataObjectGroupReferenceId``. Validation is separate
(:mod:`relais.seda.xsd`): a builder bug must show as a schema error, not be hidden here.
"""

from __future__ import annotations

from datetime import date, datetime

from lxml import etree

from relais.seda.model import DataFile, Rule, SedaVersion, Transfer, Unit

DIGEST_ALGORITHM = "SHA-512"
"""Spelled as Vitam expects it (``protocols.md`` §7.3)."""

#: ``CodeListVersions``: mandatory; Relais names the lists it follows.
_CODE_LISTS: tuple[tuple[str, str], ...] = (
    ("ReplyCodeListVersion", "ReplyCodeListVersion0"),
    ("MessageDigestAlgorithmCodeListVersion", "MessageDigestAlgorithmCodeListVersion0"),
    ("MimeTypeCodeListVersion", "MimeTypeCodeListVersion0"),
    ("FileFormatCodeListVersion", "FileFormatCodeListVersion0"),
)


class _Writer:
    def __init__(self, version: SedaVersion) -> None:
        self.ns = version.namespace

    def el(self, parent: etree._Element, name: str, text: str | None = None,
           **attrs: str) -> etree._Element:
        child = etree.SubElement(parent, f"{{{self.ns}}}{name}", attrs)
        if text is not None:
            child.text = text
        return child


def _dt(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _date(value: date) -> str:
    return value.isoformat()


def _rule(w: _Writer, parent: etree._Element, name: str, rule: Rule,
          final_action: str | None = None) -> None:
    node = w.el(parent, name)
    w.el(node, "Rule", rule.rule)
    if rule.start_date is not None:
        w.el(node, "StartDate", _date(rule.start_date))
    if final_action is not None:
        w.el(node, "FinalAction", final_action)


def _object(w: _Writer, package: etree._Element, data: DataFile) -> None:
    group = w.el(package, "DataObjectGroup", id=f"G{data.object_id}")
    bdo = w.el(group, "BinaryDataObject", id=data.object_id)
    w.el(bdo, "DataObjectVersion", "BinaryMaster_1")
    w.el(bdo, "Uri", data.path)
    w.el(bdo, "MessageDigest", data.sha512, algorithm=DIGEST_ALGORITHM)
    w.el(bdo, "Size", str(data.size))
    fmt = w.el(bdo, "FormatIdentification")
    if data.format_name:
        w.el(fmt, "FormatLitteral", data.format_name)
    w.el(fmt, "MimeType", data.mime_type)
    if data.pronom:
        w.el(fmt, "FormatId", data.pronom)
    info = w.el(bdo, "FileInfo")
    w.el(info, "Filename", data.filename)
    if data.last_modified is not None:
        w.el(info, "LastModified", _dt(data.last_modified))


def _unit(w: _Writer, parent: etree._Element, unit: Unit) -> None:
    node = w.el(parent, "ArchiveUnit", id=unit.unit_id)
    if unit.access_rule is not None:
        management = w.el(node, "Management")
        _rule(w, management, "AccessRule", unit.access_rule)
    content = w.el(node, "Content")
    w.el(content, "DescriptionLevel", unit.level)
    w.el(content, "Title", unit.title)
    if unit.description:
        w.el(content, "Description", unit.description)
    if unit.document_type:
        w.el(content, "DocumentType", unit.document_type)
    for keyword in unit.keywords:
        kw = w.el(content, "Keyword")
        w.el(kw, "KeywordContent", keyword.content)
        if keyword.kind:
            w.el(kw, "KeywordType", keyword.kind)
    if unit.originating_agency:
        agency = w.el(content, "OriginatingAgency")
        w.el(agency, "Identifier", unit.originating_agency)
    if unit.created is not None:
        w.el(content, "CreatedDate", _date(unit.created))
    if unit.start_date is not None:
        w.el(content, "StartDate", _date(unit.start_date))
    if unit.end_date is not None:
        w.el(content, "EndDate", _date(unit.end_date))
    for child in unit.children:
        _unit(w, node, child)
    for data in unit.files:
        ref = w.el(node, "DataObjectReference")
        w.el(ref, "DataObjectGroupReferenceId", f"G{data.object_id}")


def build_manifest(transfer: Transfer) -> bytes:
    """The manifest's bytes (UTF-8, with an XML declaration)."""
    w = _Writer(transfer.version)
    root = etree.Element(f"{{{w.ns}}}ArchiveTransfer",
                         nsmap={None: w.ns})  # type: ignore[dict-item]  # default namespace
    if transfer.comment:
        w.el(root, "Comment", transfer.comment)
    w.el(root, "Date", _dt(transfer.date))
    w.el(root, "MessageIdentifier", transfer.message_identifier)
    if transfer.archival_agreement:
        w.el(root, "ArchivalAgreement", transfer.archival_agreement)
    lists = w.el(root, "CodeListVersions")
    for name, value in _CODE_LISTS:
        w.el(lists, name, value)
    package = w.el(root, "DataObjectPackage")
    for data in transfer.files():
        _object(w, package, data)
    descriptive = w.el(package, "DescriptiveMetadata")
    for unit in transfer.units:
        _unit(w, descriptive, unit)
    management = w.el(package, "ManagementMetadata")
    if transfer.archival_profile:
        w.el(management, "ArchivalProfile", transfer.archival_profile)
    w.el(management, "OriginatingAgencyIdentifier", transfer.originating_agency)
    if transfer.submission_agency:
        w.el(management, "SubmissionAgencyIdentifier", transfer.submission_agency)
    if transfer.appraisal_rule is not None:
        _rule(w, management, "AppraisalRule", transfer.appraisal_rule,
              transfer.appraisal_final_action)
    if transfer.access_rule is not None:
        _rule(w, management, "AccessRule", transfer.access_rule)
    archival = w.el(root, "ArchivalAgency")
    w.el(archival, "Identifier", transfer.archival_agency)
    transferring = w.el(root, "TransferringAgency")
    w.el(transferring, "Identifier", transfer.transferring_agency)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
