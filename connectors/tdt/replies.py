"""Parsers of S²LOW answers, written from S²LOW's own scripts. Lenient on form, strict on meaning.

Each parser takes the raw answer bytes and returns plain values, or raises
:class:`PartnerReplyError` when the answer cannot mean anything, and the error
of :func:`connectors.tdt.errors.refusal` when it is a ``KO``.

Answer shapes (libriciel/s2low):

- creations (``actes_transac_create.php``, ``actes_transac_cancel.php``, and
  ``actes_transac_reponse_create.php`` with ``api`` in POST only):
  ``OK\\n<id>\\n\\n`` through ``ResponseHelper::returnAndExit``; the reply
  script answers ``OK : id généré : <id>\\n`` when ``api`` is in the query;
- status (``actes_transac_get_status.php``): ``OK\\n<state>\\n`` then the
  stored return file, then for state -1 the error message (ISO-8859-1);
- listings: JSON, see :func:`parse_actes_listing` and :func:`parse_document_list`.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from lxml import etree

from connectors.tdt.errors import decode_text, is_ko, refusal, reply_error
from connectors.tdt.models import PrefectureDocumentRef, TransactionRef

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_ROOT_TAG = re.compile(rb"<(?![?!])([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)[\s/>]")
_OK_ID_INLINE = re.compile(rb"OK\s*:\D*?([0-9]+)\s*$")


def _lines(body: bytes) -> list[bytes]:
    return body.replace(b"\r\n", b"\n").split(b"\n")


def parse_ok_id(
    body: bytes, *, partner: str, operation: str, status: int, url: str, field: str = "acte"
) -> str:
    """The transaction id of a creation answer: ``OK\\n<id>`` or ``OK : id généré : <id>``."""
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=status, url=url, field=field
        )
    lines = [line.strip() for line in _lines(body.lstrip())]
    if len(lines) >= 2 and lines[0] == b"OK" and lines[1].isdigit():
        return lines[1].decode("ascii")
    inline = _OK_ID_INLINE.match(lines[0])
    if inline is not None:
        return inline.group(1).decode("ascii")
    raise reply_error(partner, operation, "expected OK and a transaction id", body)


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
    body: bytes, *, partner: str, operation: str, status: int, url: str
) -> tuple[int, bytes | None, str]:
    """(state, returned XML or None, message) from a status answer.

    ``OK`` on line 1, the state on line 2, then the stored return file (the
    ``ARActe`` at 4, an ``AnomalieActe`` at -1, an ``ARAnnulation`` at 0) and,
    for state -1, the error message.
    """
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=status, url=url, field="transaction"
        )
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


def parse_ok_text_reply(body: bytes, *, partner: str, operation: str, status: int, url: str) -> str:
    """The text after ``OK`` of a plain acknowledgement answer."""
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=status, url=url, field="request"
        )
    text = decode_text(body).strip()
    lines = text.splitlines()
    if not lines or lines[0].strip() != "OK":
        raise reply_error(partner, operation, "expected an answer starting with OK", body)
    return "\n".join(lines[1:]).strip()


def _load_json(body: bytes, *, partner: str, operation: str) -> Any:
    try:
        return json.loads(decode_text(body))
    except ValueError as exc:
        raise reply_error(partner, operation, f"not JSON ({exc})", body) from exc


def _text(value: Any) -> str:
    """A JSON scalar as S²LOW means it (its rows hold strings; a number is read alike)."""
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        raise TypeError(f"not a scalar: {value!r}")
    return str(value).strip()


def _opt_text(value: Any) -> str | None:
    text = _text(value)
    return text or None


def _opt_int(value: Any) -> int | None:
    text = _text(value)
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _opt_date(value: Any) -> date | None:
    text = _text(value)
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _json_refusal(
    data: Any, body: bytes, *, partner: str, operation: str, status: int, url: str
) -> None:
    """Raise the refusal a JSON error object carries (``{"error": …}`` or ``status`` error)."""
    if not isinstance(data, dict):
        return
    for key in ("error", "error-message", "message"):
        text = data.get(key)
        if isinstance(text, str) and text and (key == "error" or data.get("status") == "error"):
            raise refusal(
                b"KO\n" + text.encode("utf-8"),
                partner=partner,
                operation=operation,
                status=status,
                url=url,
                field="request",
            )


def parse_actes_listing(
    body: bytes,
    *,
    partner: str,
    operation: str,
    status: int,
    url: str,
    status_id: int,
    offset: int,
) -> list[TransactionRef]:
    """Rows of one ``api/list_actes.php`` page (``ActesAPIController::listActesAction``).

    The answer is ``{"status_id", "authority_id", "offset", "limit",
    "transactions": [{"id", "subject", "number", "date", "nature_descr",
    "classification", "type"}, …]}``, rows newest first. The echoed
    ``status_id`` and ``offset`` must be the ones asked (an older S²LOW that
    ignores a parameter would otherwise be read as a proof of absence), and
    ``authority_id`` must not be 0: the legacy controller does not stop on a
    failed authentication, it lists the transactions of authority 0 (none).
    """
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=status, url=url, field="request"
        )
    data = _load_json(body, partner=partner, operation=operation)
    _json_refusal(data, body, partner=partner, operation=operation, status=status, url=url)
    if not isinstance(data, dict) or not isinstance(data.get("transactions"), list):
        raise reply_error(partner, operation, "expected an object with a transactions list", body)
    try:
        echoed_status = _opt_int(data.get("status_id"))
        echoed_offset = _opt_int(data.get("offset"))
        authority = _opt_int(data.get("authority_id"))
    except TypeError as exc:
        raise reply_error(partner, operation, str(exc), body) from exc
    if authority in (None, 0):
        raise refusal(
            b"KO\nEchec de l'authentification (the listing names no authority)",
            partner=partner,
            operation=operation,
            status=status,
            url=url,
        )
    if echoed_status != status_id or echoed_offset not in (None, offset):
        raise reply_error(
            partner,
            operation,
            f"asked status_id={status_id} offset={offset}, "
            f"answered status_id={echoed_status} offset={echoed_offset}",
            body,
        )
    rows = []
    for row in data["transactions"]:
        try:
            if not isinstance(row, dict) or not _text(row.get("id")):
                raise TypeError(f"row without id: {row!r}")
            rows.append(
                TransactionRef(
                    id=_text(row["id"]),
                    type=_text(row.get("type")),
                    number=_text(row.get("number")),
                    decision_date=_opt_date(row.get("date")),
                    status=status_id,
                    subject=_text(row.get("subject")),
                    nature_descr=_text(row.get("nature_descr")),
                    classification=_text(row.get("classification")),
                )
            )
        except TypeError as exc:
            raise reply_error(partner, operation, str(exc)[:200], body) from exc
    return rows


def parse_document_list(
    body: bytes, *, partner: str, operation: str, status: int, url: str
) -> list[PrefectureDocumentRef]:
    """Rows of ``api/list_document_prefecture.php``: a JSON list of transaction rows.

    Each row is ``{"id", "type", "related_transaction_id", "number",
    "unique_id", "last_status_id"}`` (``listDocumentPrefectureNonLu``); a row
    without an id or a type ``'2'``…``'5'`` makes the whole answer unreadable.
    """
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=status, url=url, field="request"
        )
    data = _load_json(body, partner=partner, operation=operation)
    _json_refusal(data, body, partner=partner, operation=operation, status=status, url=url)
    if not isinstance(data, list):
        raise reply_error(partner, operation, "expected a JSON list", body)
    refs = []
    for row in data:
        try:
            if not isinstance(row, dict) or not _text(row.get("id")):
                raise TypeError(f"row without id: {row!r}")
            kind = _text(row.get("type"))
            if kind not in {"2", "3", "4", "5"}:
                raise TypeError(f"row {_text(row.get('id'))}: type {kind!r} is not 2 to 5")
            refs.append(
                PrefectureDocumentRef(
                    id=_text(row["id"]),
                    type=kind,
                    related_transaction_id=_opt_text(row.get("related_transaction_id")),
                    number=_opt_text(row.get("number")),
                    unique_id=_opt_text(row.get("unique_id")),
                    last_status_id=_opt_int(row.get("last_status_id")),
                )
            )
        except TypeError as exc:
            raise reply_error(partner, operation, str(exc)[:200], body) from exc
    return refs


def parse_mark_read(body: bytes, *, partner: str, operation: str, status: int, url: str) -> None:
    """``api/document_prefecture_mark_as_read.php`` answers ``{"result":"ok"}`` (always)."""
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=status, url=url, field="request"
        )
    data = _load_json(body, partner=partner, operation=operation)
    _json_refusal(data, body, partner=partner, operation=operation, status=status, url=url)
    if not isinstance(data, dict) or str(data.get("result", "")).lower() != "ok":
        raise reply_error(partner, operation, 'expected {"result":"ok"}', body)


def check_xml_document(body: bytes, *, partner: str, operation: str, url: str) -> bytes:
    """Return ``body`` when it is a well-formed XML document; raise otherwise."""
    if is_ko(body):
        raise refusal(
            body, partner=partner, operation=operation, status=200, url=url, field="request"
        )
    try:
        etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise reply_error(partner, operation, f"malformed XML ({exc})", body) from exc
    return body
