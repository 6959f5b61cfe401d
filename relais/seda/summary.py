"""``relais parse`` for SEDA messages: ``ArchiveTransfer``, ``ArchiveTransferReply``,
``Acknowledgement`` (1.0 and 2.x), recognised by their namespace, summarised as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relais.errors import PartnerReplyTooLargeError
from relais.seda.reply import MAX_REPLY_BYTES, read_reply

SEDA_MARKER = b"archivesdefrance:seda:v"


def is_seda(head: bytes) -> bool:
    """Whether the first bytes of a file name a SEDA namespace."""
    return SEDA_MARKER in head


def summarise_seda_file(path: Path, cap: int = MAX_REPLY_BYTES) -> dict[str, Any]:
    size = path.stat().st_size
    if size > cap:
        raise PartnerReplyTooLargeError(f"{path} has {size} bytes, over the cap of {cap}",
                                        partner="archive")
    message = read_reply(path.read_bytes(), cap=cap)
    return {
        "file": str(path), "size": size, "root": message.root,
        "seda_version": message.version,
        "message_identifier": message.message_identifier,
        "message_request_identifier": message.message_request_identifier,
        "reply_code": message.reply_code,
        "accepted": message.accepted if message.root.startswith("ArchiveTransfer")
        and message.root != "ArchiveTransfer" else None,
        "grant_date": message.grant_date,
        "events": [{"type_code": e.type_code, "outcome": e.outcome, "detail": e.message}
                   for e in message.events],
        "unit_ids": message.unit_ids, "object_ids": message.object_ids,
        "archive_identifiers": list(message.archive_identifiers),
    }
