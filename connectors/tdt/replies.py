"""Parsers of S²LOW replies. Lenient on form, strict on meaning.

Each parser takes the raw reply bytes and returns plain values, or raises
:class:`PartnerReplyError` when the reply cannot mean anything (and
:class:`PartnerPermanentError` when it is a well-formed ``KO``).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from lxml import etree

from connectors.tdt.errors import decode_text, ko_error, reply_error
from connectors.tdt.models import PrefectureDocumentRef, TransactionRef

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_ROOT_TAG = re.compile(rb"<(?![?!])([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)[\s/>]")


def _lines(body: bytes) -> list[bytes]:
    return body.replace(b"\r\n", b"\n").split(b"\n")


_KO_LINE = re.compile(rb"KO(?:$|[\s:])")
_OK_ID_LINE = re.compile(rb"OK\s*:\D*([0-9]+)\s*$")


def is_ko(body: bytes) -> bool:
    """True when a text reply starts with ``KO`` (``KO`` alone on its line, or ``KO : …``)."""
    first = _lines(body.lstrip())[0].strip()
    return _KO_LINE.match(first) is not None


def parse_create_reply(body: bytes, *, partner: str, operation: str, status: int) -> str:
    """The transaction id of a creation reply.

    Accepts the XML reply of the S²LOW API (an element ``<id>``, optionally
    ``<resultat>`` and ``<message>``) and the older text reply ``OK\\n<id>``.
    """
    stripped = body.lstrip()
    if stripped.startswith(b"<"):
        try:
            root = etree.fromstring(stripped, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise reply_error(partner, operation, f"malformed XML ({exc})", body) from exc
        outcome = (root.findtext(".//resultat") or "OK").strip().upper()
        if outcome == "KO":
            message = (root.findtext(".//message") or "").strip()
            raise ko_error(b"KO\n" + message.encode("utf-8"), partner, operation, status)
        transaction_id = (root.findtext(".//id") or "").strip()
        if not transaction_id:
            raise reply_error(partner, operation, "no <id> in the reply", body)
        return transaction_id
    if is_ko(body):
        raise ko_error(body, partner, operation, status)
    lines = [line.strip() for line in _lines(stripped)]
    if len(lines) >= 2 and lines[0] == b"OK" and lines[1].isdigit():
        return lines[1].decode("ascii")
    inline = _OK_ID_LINE.match(lines[0])  # "OK : id généré : 123"
    if inline is not None:
        return inline.group(1).decode("ascii")
    raise reply_error(partner, operation, "neither an XML <id> nor an OK line with an id", body)


def split_xml_prefix(data: bytes) -> tuple[bytes | None, bytes]:
    """Split ``data`` into a leading XML document (up to its root's end) and the rest.

    The root ends at its end tag, or at its start tag when it is empty (``<root/>``).
    """
    stripped = data.lstrip()
    if not stripped.startswith(b"<"):
        return None, data
    match = _ROOT_TAG.search(stripped)
    if match is None:
        return None, data
    start_tag_end = _start_tag_end(stripped, match.end(1))
    if start_tag_end is None:
        return None, data
    if stripped[start_tag_end - 1 : start_tag_end] == b"/":
        end = start_tag_end + 1
    else:
        end_tag = b"</" + match.group(1) + b">"
        found = stripped.rfind(end_tag)
        if found < 0:
            return None, data
        end = found + len(end_tag)
    return stripped[:end], stripped[end:]


def _start_tag_end(data: bytes, position: int) -> int | None:
    """Index of the ``>`` closing the start tag that begins before ``position``."""
    quote: int | None = None
    for index in range(position, len(data)):
        char = data[index]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in (0x22, 0x27):  # " or '
            quote = char
        elif char == 0x3E:  # >
            return index
    return None


def parse_status_reply(
    body: bytes, *, partner: str, operation: str, status: int
) -> tuple[int, bytes | None, str]:
    """(state, returned XML or None, message) from a status reply.

    The reply is ``OK`` or ``KO`` on line 1, the state number on line 2, then
    for state 4 the ``ARActe`` XML and for state -1 the error text (which S²LOW
    may precede with the XML it received, such as an ``AnomalieActe``).
    """
    if is_ko(body):
        raise ko_error(body, partner, operation, status)
    first, _, rest = body.lstrip().partition(b"\n")
    if first.strip() != b"OK":
        raise reply_error(partner, operation, "first line is neither OK nor KO", body)
    state_line, _, payload = rest.partition(b"\n")
    try:
        state = int(state_line.strip())
    except ValueError as exc:
        raise reply_error(partner, operation, "second line is not a state number", body) from exc
    document, remainder = split_xml_prefix(payload)
    message = decode_text(remainder).strip()
    return state, document, message


def parse_ok_id_reply(body: bytes, *, partner: str, operation: str, status: int) -> str:
    """The id on line 2 of an ``OK\\n<id>`` reply (cancellation, member reply)."""
    return parse_create_reply(body, partner=partner, operation=operation, status=status)


def parse_ok_text_reply(body: bytes, *, partner: str, operation: str, status: int) -> str:
    """The text after ``OK`` of a plain acknowledgement reply."""
    if is_ko(body):
        raise ko_error(body, partner, operation, status)
    text = decode_text(body).strip()
    lines = text.splitlines()
    if not lines or lines[0].strip() != "OK":
        raise reply_error(partner, operation, "expected a reply starting with OK", body)
    return "\n".join(lines[1:]).strip()


def _load_json(body: bytes, *, partner: str, operation: str) -> Any:
    try:
        return json.loads(decode_text(body))
    except ValueError as exc:
        raise reply_error(partner, operation, f"not JSON ({exc})", body) from exc


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _opt_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _opt_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _type_code(value: Any) -> str:
    text = str(value).strip()
    # S²LOW lists the message family only ("2"); the prefecture sends its x-1 message.
    return text if "-" in text else f"{text}-1"


def parse_document_list(
    body: bytes, *, partner: str, operation: str
) -> list[PrefectureDocumentRef]:
    """Rows of ``api/list_document_prefecture.php``: a JSON list of objects.

    Each row needs ``id`` and ``type``; ``related_transaction_id``, ``date``,
    ``number`` and ``last_status_id`` are read when present. Rows without an id
    make the whole reply unreadable.
    """
    data = _load_json(body, partner=partner, operation=operation)
    if isinstance(data, dict) and "documents" in data:
        data = data["documents"]
    if not isinstance(data, list):
        raise reply_error(partner, operation, "expected a JSON list", body)
    refs = []
    for row in data:
        if not isinstance(row, dict) or _opt_str(row.get("id")) is None or "type" not in row:
            raise reply_error(partner, operation, f"row without id or type: {row!r}", body)
        refs.append(
            PrefectureDocumentRef(
                id=str(row["id"]),
                type_code=_type_code(row["type"]),
                related_transaction_id=_opt_str(row.get("related_transaction_id")),
                date=_opt_date(row.get("date")),
                number=_opt_str(row.get("number")),
                status=_opt_int(row.get("last_status_id")),
            )
        )
    return refs


def parse_transaction_list(body: bytes, *, partner: str, operation: str) -> list[TransactionRef]:
    """Rows of a transaction listing: ``{"transactions": [...]}`` or a bare list.

    Each row needs ``id`` and ``number``; ``decision_date``, ``nature_code``
    (or S²LOW's ``type``), ``status`` (or ``last_status_id``) and the sandbox's
    ``idempotency_key`` are read when present.
    """
    data = _load_json(body, partner=partner, operation=operation)
    if isinstance(data, dict):
        data = data.get("transactions")
    if not isinstance(data, list):
        raise reply_error(partner, operation, "expected a list of transactions", body)
    refs = []
    for row in data:
        if not isinstance(row, dict) or _opt_str(row.get("id")) is None:
            raise reply_error(partner, operation, f"row without id: {row!r}", body)
        refs.append(
            TransactionRef(
                id=str(row["id"]),
                number=str(row.get("number") or ""),
                decision_date=_opt_date(row.get("decision_date") or row.get("date")),
                nature_code=_opt_int(row.get("nature_code", row.get("type"))),
                status=_opt_int(row.get("status", row.get("last_status_id"))),
                idempotency_key=_opt_str(row.get("idempotency_key")),
            )
        )
    return refs


def check_xml_document(body: bytes, *, partner: str, operation: str) -> bytes:
    """Return ``body`` when it is a well-formed XML document; raise otherwise."""
    if is_ko(body):
        raise ko_error(body, partner, operation, 200)
    try:
        etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise reply_error(partner, operation, f"malformed XML ({exc})", body) from exc
    return body
