"""The ATR (ArchiveTransferReply) the sandbox writes, in the shape of Vitam's
``TransferNotificationActionHandler``: ``MessageIdentifier`` = the operation id,
``ArchivalAgreement``, ``CodeListVersions``, ``DataObjectPackage`` holding Vitam's
``ManagementMetadata/ReplyOutcome`` (the events that were not OK, the units' and
objects' system ids when archived), then ``ReplyCode`` (the workflow status),
``MessageRequestIdentifier`` (the SIP's ``MessageIdentifier``; empty when the manifest
could not be read), ``GrantDate`` when archived, the two agencies. Like Vitam's own, it
uses Vitam's extension elements and so does not validate against the official schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from lxml import etree

from relais.seda.model import SedaVersion
from sandbox.archive.checks import Verdict

_LABELS = {
    "CHECK_CONTAINER": "Contrôle du format du conteneur du SIP",
    "CHECK_SEDA": "Vérification globale du SIP",
    "CHECK_DATAOBJECTPACKAGE": "Vérification des objets du bordereau",
    "CHECK_DIGEST": "Vérification de l'intégrité des objets",
    "CHECK_OBJECT_SIZE": "Vérification de la taille des objets",
    "PROCESS_SIP_UNITARY": "Processus d'entrée d'un SIP",
}


def _el(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        node.text = text
    return node


def write_atr(operation_id: str, verdict: Verdict, status: str, now: datetime,
              unit_ids: Mapping[str, str], object_ids: Mapping[str, str]) -> bytes:
    ns = (verdict.version or SedaVersion.V2_1).namespace
    root = etree.Element(f"{{{ns}}}ArchiveTransferReply",
                         nsmap={None: ns})  # type: ignore[dict-item]  # default namespace
    stamp = now.isoformat(timespec="milliseconds")
    _el(root, ns, "Date", stamp)
    _el(root, ns, "MessageIdentifier", operation_id)
    _el(root, ns, "ArchivalAgreement", verdict.archival_agreement or "")
    lists = _el(root, ns, "CodeListVersions")
    _el(lists, ns, "ReplyCodeListVersion", "")
    _el(lists, ns, "MessageDigestAlgorithmCodeListVersion", "")
    _el(lists, ns, "FileFormatCodeListVersion", "")
    package = _el(root, ns, "DataObjectPackage")
    _el(package, ns, "DescriptiveMetadata")
    outcome = _el(_el(package, ns, "ManagementMetadata"), ns, "ReplyOutcome")
    failing = [check for check in verdict.checks if check.outcome != "OK"]
    if failing:
        operation = _el(outcome, ns, "Operation")
        for check in failing:
            event = _el(operation, ns, "Event")
            _el(event, ns, "EventTypeCode", check.code)
            _el(event, ns, "EventType", _LABELS.get(check.code, check.code))
            _el(event, ns, "EventDateTime", stamp)
            _el(event, ns, "Outcome", check.outcome)
            _el(event, ns, "OutcomeDetail", f"{check.code}.{check.outcome}")
            _el(event, ns, "OutcomeDetailMessage", check.message)
    units = _el(outcome, ns, "ArchiveUnitList")
    for sip_id, system_id in unit_ids.items():
        unit = _el(units, ns, "ArchiveUnit")
        unit.set("id", sip_id)
        _el(unit, ns, "SystemId", system_id)
    objects = _el(outcome, ns, "DataObjectList")
    for sip_id, system_id in object_ids.items():
        bdo = _el(objects, ns, "BinaryDataObject")
        bdo.set("id", sip_id)
        _el(bdo, ns, "DataObjectSystemId", system_id)
        _el(bdo, ns, "DataObjectVersion", "BinaryMaster_1")
    _el(root, ns, "ReplyCode", status)
    _el(root, ns, "MessageRequestIdentifier", verdict.message_identifier or "")
    if status in ("OK", "WARNING"):
        _el(root, ns, "GrantDate", stamp)
    _el(_el(root, ns, "ArchivalAgency"), ns, "Identifier", verdict.archival_agency or "")
    _el(_el(root, ns, "TransferringAgency"), ns, "Identifier", verdict.transferring_agency or "")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
