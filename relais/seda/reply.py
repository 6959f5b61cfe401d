"""Read what an archive answers: ``ArchiveTransferReply`` (SEDA 1.0 and 2.x),
``Acknowledgement``, and an ``ArchiveTransfer`` (for ``relais parse``), leniently.

Replies are hostile input: size-capped, parsed with no DTD, no entities and no network,
off the event loop (:func:`read_reply_async`). Elements are found by local name, so
Vitam's extended namespace and SEDA 1.0 read alike; the raw bytes are kept.

Outcome rules (``protocols.md`` §3.3): in SEDA 2.x ``ReplyCode`` is a free token; Vitam
writes its status (``OK``, ``WARNING``, ``KO``, ``FATAL``; a prefix such as
``STARTED_``/``PAUSE_`` may precede it): OK and WARNING mean archived. In SEDA 1.0 (and
0.2) codes are numeric and ``000``/``001``/``002`` mean accepted (Pastell's rule for
As@lae accepts ``000`` only; 001 "OK with comments" and 002 "control authorities asked"
are acceptances in the code list itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lxml import etree

from relais.actes.xsd import hardened_parser
from relais.errors import PartnerReplyError, PartnerReplyTooLargeError

MAX_REPLY_BYTES = 32 * 1024 * 1024
_ACCEPTED_1_0 = frozenset({"000", "001", "002"})
_ACCEPTED_2_X = frozenset({"OK", "WARNING"})


@dataclass(frozen=True)
class ReplyEvent:
    """One ``Operation/Event`` of a reply (Vitam: a logbook step or task)."""

    type_code: str | None
    type: str | None
    outcome: str | None
    outcome_detail: str | None
    message: str | None
    date_time: str | None

    @property
    def failed(self) -> bool:
        return (self.outcome or "").upper() in ("KO", "FATAL")

    def describe(self) -> str:
        what = self.type_code or self.type or "event"
        detail = self.message or self.outcome_detail or ""
        return f"{what}: {self.outcome or '?'}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class SedaReply:
    """A SEDA message as read: its root, version, identifiers and, for a transfer
    reply, its outcome and the archive's identifiers of the transferred units and objects."""

    root: str
    version: str
    message_identifier: str | None
    message_request_identifier: str | None
    reply_code: str | None
    grant_date: str | None
    events: tuple[ReplyEvent, ...]
    unit_ids: dict[str, str] = field(default_factory=dict)
    object_ids: dict[str, str] = field(default_factory=dict)
    archive_identifiers: tuple[str, ...] = ()
    raw: bytes = b""

    @property
    def accepted(self) -> bool:
        """Whether the archive took the transfer (see the module's outcome rules)."""
        if self.root == "ArchiveTransferAcceptance":
            return True
        if self.root != "ArchiveTransferReply" or not self.reply_code:
            return False
        code = self.reply_code.strip()
        if self.version.startswith(("0.", "1.")) or code.isdigit():
            return code in _ACCEPTED_1_0
        status = code.upper().rsplit("_", 1)[-1]
        return status in _ACCEPTED_2_X

    def failed_events(self) -> list[ReplyEvent]:
        return [event for event in self.events if event.failed]

    def reasons(self) -> list[str]:
        """Why the archive refused, in its own words (failing events, else the code)."""
        failed = [event.describe() for event in self.failed_events()]
        return failed or [f"ReplyCode {self.reply_code or '(none)'}"]


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _child_text(node: etree._Element, name: str) -> str | None:
    for child in node:
        if _local(child) == name:
            text = (child.text or "").strip()
            return text
    return None


def _version(namespace: str | None) -> str:
    marker = ":seda:v"
    if namespace and marker in namespace:
        return namespace.rsplit(marker, 1)[1]
    return "unknown"


def _events(root: etree._Element) -> tuple[ReplyEvent, ...]:
    events = []
    for node in root.iter():
        if _local(node) != "Event":
            continue
        events.append(ReplyEvent(
            type_code=_child_text(node, "EventTypeCode"),
            type=_child_text(node, "EventType"),
            outcome=_child_text(node, "Outcome"),
            outcome_detail=_child_text(node, "OutcomeDetail"),
            message=_child_text(node, "OutcomeDetailMessage") or _child_text(node, "EventDetail"),
            date_time=_child_text(node, "EventDateTime"),
        ))
    return tuple(events)


def _system_ids(root: etree._Element, element: str, id_child: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in root.iter():
        if _local(node) != element or not node.get("id"):
            continue
        value = _child_text(node, id_child)
        if value is None:  # 2.x ArchiveUnit: Content/SystemId
            for inner in node:
                if _local(inner) == "Content":
                    value = _child_text(inner, id_child)
        if value:
            found[node.get("id", "")] = value
    return found


def read_reply(data: bytes, *, cap: int = MAX_REPLY_BYTES) -> SedaReply:
    """Parse a SEDA message (raises :class:`PartnerReplyError` when it is not one)."""
    if len(data) > cap:
        raise PartnerReplyTooLargeError(
            f"the SEDA message is {len(data)} bytes, over the cap of {cap}", partner="archive")
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise PartnerReplyError(f"the SEDA message is not XML: {exc}", partner="archive") from exc
    name = _local(root)
    namespace = etree.QName(root).namespace
    if namespace is None or ":seda:" not in namespace:
        raise PartnerReplyError(f"{name} is not a SEDA message (namespace {namespace!r})",
                                partner="archive")
    archive_ids = tuple(
        (node.text or "").strip() for node in root.iter()
        if _local(node) in ("ArchivalAgencyArchiveIdentifier",
                            "ArchivalAgencyArchiveUnitIdentifier") and (node.text or "").strip()
    )
    if name == "ArchiveTransfer":  # 1.0 names its own identifier TransferIdentifier
        own = _child_text(root, "MessageIdentifier") or _child_text(root, "TransferIdentifier")
        request_id = None
    else:
        own = _child_text(root, "MessageIdentifier") or _child_text(root, "TransferReplyIdentifier")
        request_id = (_child_text(root, "MessageRequestIdentifier")
                      or _child_text(root, "TransferIdentifier")
                      or _child_text(root, "MessageReceivedIdentifier"))
    return SedaReply(
        root=name,
        version=_version(namespace),
        message_identifier=own or None,
        message_request_identifier=request_id or None,
        reply_code=_child_text(root, "ReplyCode"),
        grant_date=_child_text(root, "GrantDate"),
        events=_events(root),
        unit_ids=_system_ids(root, "ArchiveUnit", "SystemId"),
        object_ids=_system_ids(root, "BinaryDataObject", "DataObjectSystemId"),
        archive_identifiers=archive_ids,
        raw=data,
    )


async def read_reply_async(data: bytes, *, cap: int = MAX_REPLY_BYTES) -> SedaReply:
    """:func:`read_reply` off the event loop."""
    return await asyncio.to_thread(read_reply, data, cap=cap)
