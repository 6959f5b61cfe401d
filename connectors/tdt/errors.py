"""Translation of httpx failures and TdT HTTP statuses into the Relais error tree.

Every failure the TdT connector can meet crosses this module exactly once:

    httpx exception raised by the transport        Relais error
    ├── TlsClientAuthError (connectors/tdt/tls.py:  PartnerAuthError       client certificate
    │   TLS alert, reset/EOF confirmed by a probe,                         refused, or server
    │   server certificate not trusted)                                    certificate untrusted
    ├── TimeoutException (connect/read/write/pool)  PartnerTimeoutError    retriable
    ├── NetworkError (connect/read/write/close)     PartnerTransientError  retriable
    ├── RemoteProtocolError, ProxyError            PartnerTransientError  retriable
    ├── ProtocolError (neither side named)         PartnerTransientError  retriable
    ├── LocalProtocolError, UnsupportedProtocol    PartnerPermanentError  (our request or URL)
    └── DecodingError, TooManyRedirects            PartnerReplyError

    HTTP reply status                              Relais error
    ├── 429, 5xx                                   PartnerTransientError  (retry_after: Retry-After)
    ├── 3xx (redirects are not followed)           PartnerPermanentError  (usually a login page)
    └── other 4xx                                  PartnerPermanentError  with the TdT's KO text

The transport table is explicit: ``tests/unit/test_tdt_connector.py`` fails when
httpx grows a request error class that no row covers. At run time such a class
is still translated (to a retriable error) and logged as unmapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from connectors.tdt.tls import TlsClientAuthError
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerPermanentError,
    PartnerReplyError,
    PartnerTimeoutError,
    PartnerTransientError,
    Reason,
)

log = structlog.get_logger(__name__)

TRANSPORT_ERRORS: tuple[tuple[type[httpx.RequestError], type[PartnerError]], ...] = (
    (TlsClientAuthError, PartnerAuthError),
    (httpx.TimeoutException, PartnerTimeoutError),
    (httpx.NetworkError, PartnerTransientError),
    (httpx.RemoteProtocolError, PartnerTransientError),
    (httpx.ProxyError, PartnerTransientError),
    (httpx.LocalProtocolError, PartnerPermanentError),
    (httpx.ProtocolError, PartnerTransientError),
    (httpx.UnsupportedProtocol, PartnerPermanentError),
    (httpx.DecodingError, PartnerReplyError),
    (httpx.TooManyRedirects, PartnerReplyError),
)
"""(httpx class, Relais class) rows, checked in order with ``issubclass``."""


def error_class_for(exc_type: type[BaseException]) -> type[PartnerError] | None:
    """The Relais class the table gives to an httpx request error class, or None."""
    for httpx_type, partner_type in TRANSPORT_ERRORS:
        if issubclass(exc_type, httpx_type):
            return partner_type
    return None


@contextmanager
def map_transport_errors(partner: str, operation: str) -> Iterator[None]:
    """Re-raise any httpx request error raised inside the block as a :class:`PartnerError`."""
    try:
        yield
    except httpx.RequestError as exc:
        error_type = error_class_for(type(exc))
        if error_type is None:
            log.warning(
                "tdt_unmapped_transport_error", operation=operation, error=type(exc).__name__
            )
            error_type = PartnerTransientError
        detail = str(exc) or type(exc).__name__
        raise error_type(f"{operation}: {type(exc).__name__}: {detail}", partner=partner) from exc


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def decode_text(body: bytes) -> str:
    """Decode a TdT text reply: UTF-8 when it is, ISO-8859-1 otherwise (S²LOW mixes both)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("iso-8859-1")


_REASON_LINE = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_\[\]\-]*): (?P<message>.+)$")


def ko_reasons(text: str) -> list[Reason]:
    """Field reasons from a KO text whose lines read ``field: message`` (others are ignored)."""
    reasons = []
    for line in text.splitlines():
        match = _REASON_LINE.match(line.strip())
        if match:
            reasons.append(Reason(match["field"], "tdt_rejected", match["message"]))
    return reasons


def ko_message(body: bytes) -> str:
    """The human text of a reply, without its leading ``KO`` (``KO\\n…`` or ``KO : …``)."""
    text = decode_text(body).strip()
    match = re.match(r"KO(?:\s*:\s*|\s*\n|$)", text)
    return text[match.end() :].strip() if match else text


def status_error(response: httpx.Response, partner: str, operation: str) -> PartnerError | None:
    """The error an HTTP status means, or None for a 2xx reply."""
    code = response.status_code
    if 200 <= code < 300:
        return None
    text = ko_message(response.content)[:2000]
    message = f"{operation}: HTTP {code}" + (f": {text}" if text else "")
    if code == 429 or code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return PartnerTransientError(message, partner=partner, status=code, retry_after=retry_after)
    if 300 <= code < 400:
        where = response.headers.get("Location", "")
        return PartnerPermanentError(
            f"{operation}: unexpected redirect HTTP {code} to {where!r} (authentication?)",
            partner=partner,
            status=code,
        )
    return PartnerPermanentError(message, partner=partner, status=code, reasons=ko_reasons(text))


def ko_error(body: bytes, partner: str, operation: str, status: int) -> PartnerPermanentError:
    """A 2xx reply whose text starts with ``KO``: the TdT refused the call."""
    text = ko_message(body)[:2000]
    return PartnerPermanentError(
        f"{operation}: TdT answered KO: {text}",
        partner=partner,
        status=status,
        reasons=ko_reasons(text),
    )


def reply_error(partner: str, operation: str, why: str, body: bytes) -> PartnerReplyError:
    """The TdT answered 2xx with something this connector cannot read."""
    preview = decode_text(body[:200])
    return PartnerReplyError(f"{operation}: {why}; reply starts {preview!r}", partner=partner)
