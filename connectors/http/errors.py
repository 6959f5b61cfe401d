"""Translation of httpx failures and HTTP statuses into the Relais error tree, for any partner.

Every HTTP partner connector calls these at its boundary, so stages only ever see
the error tree of :mod:`relais.errors`:

    httpx exception raised by the transport        Relais error
    ├── TlsClientAuthError (connectors/http/tls.py: PartnerAuthError       client certificate
    │   TLS alert, reset/EOF confirmed by a probe,                         refused, or server
    │   server certificate not trusted)                                    certificate untrusted
    ├── TimeoutException (connect/read/write/pool)  PartnerTimeoutError    retriable
    ├── NetworkError (connect/read/write/close)     PartnerTransientError  retriable
    ├── RemoteProtocolError, ProxyError            PartnerTransientError  retriable
    ├── ProtocolError (neither side named)         PartnerTransientError  retriable
    ├── LocalProtocolError, UnsupportedProtocol    PartnerPermanentError  (our request or URL)
    └── DecodingError, TooManyRedirects            PartnerReplyError

    HTTP reply status (:func:`http_status_error`)  Relais error
    ├── 2xx                                        none
    ├── 401, 403                                   PartnerAuthError       (names the partner URL)
    ├── 429, 5xx                                   PartnerTransientError  (retry_after: Retry-After)
    ├── 3xx (redirects are off: never followed     PartnerReplyError
    │   unless the connector does it itself)
    └── other 4xx                                  PartnerPermanentError  with the partner's text

The transport table is explicit: ``tests/unit/test_http_errors.py`` fails when
httpx grows a request error class that no row covers. At run time such a class
is still translated (to a retriable error) and logged as unmapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from connectors.http.tls import TlsClientAuthError
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerPermanentError,
    PartnerReplyError,
    PartnerTimeoutError,
    PartnerTransientError,
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

TRANSIENT_STATUSES = frozenset({429})
"""4xx statuses that mean "later", not "never": rate limiting."""


def error_class_for(exc_type: type[BaseException]) -> type[PartnerError] | None:
    """The Relais class the table gives to an httpx request error class, or None."""
    for httpx_type, partner_type in TRANSPORT_ERRORS:
        if issubclass(exc_type, httpx_type):
            return partner_type
    return None


def transport_error(exc: httpx.RequestError, *, partner: str, operation: str) -> PartnerError:
    """The Relais error an httpx request error means (an unmapped class: retriable, logged)."""
    error_type = error_class_for(type(exc))
    if error_type is None:
        log.warning(
            "partner.unmapped_transport_error",
            partner=partner,
            operation=operation,
            error=type(exc).__name__,
        )
        error_type = PartnerTransientError
    detail = str(exc) or type(exc).__name__
    return error_type(f"{operation}: {type(exc).__name__}: {detail}", partner=partner)


@contextmanager
def map_transport_errors(partner: str, operation: str) -> Iterator[None]:
    """Re-raise any httpx request error raised inside the block as a :class:`PartnerError`."""
    try:
        yield
    except httpx.RequestError as exc:
        raise transport_error(exc, partner=partner, operation=operation) from exc


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


def http_status_error(
    status: int,
    headers: httpx.Headers,
    *,
    partner: str,
    operation: str,
    url: str,
    text: str = "",
    label: str | None = None,
) -> PartnerError | None:
    """The error an HTTP status means, or None for a 2xx reply.

    ``text`` is the partner's own (already decoded and shortened) words, quoted in
    the message; ``url`` is the partner's base URL, named in an authentication
    error so an operator knows which account to fix. A 3xx reaching here is one
    the connector does not follow. ``label`` names the partner in messages
    (default: ``partner``), e.g. "TdT".
    """
    if 200 <= status < 300:
        return None
    quoted = f": {text}" if text else ""
    if status in (401, 403):
        return PartnerAuthError(
            f"{operation}: the {label or partner} at {url} refused this account "
            f"(HTTP {status}){quoted}",
            partner=partner,
            status=status,
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        return PartnerTransientError(
            f"{operation}: HTTP {status}{quoted}",
            partner=partner,
            status=status,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if 300 <= status < 400:
        where = headers.get("Location", "")
        return PartnerReplyError(
            f"{operation}: unexpected redirect HTTP {status} to {where!r}",
            partner=partner,
            status=status,
        )
    return PartnerPermanentError(f"{operation}: HTTP {status}{quoted}", partner=partner,
                                 status=status)


def check_response(
    response: httpx.Response, *, partner: str, operation: str, url: str, text: str = ""
) -> None:
    """Raise the error ``response``'s status means; return for a 2xx reply."""
    error = http_status_error(
        response.status_code, response.headers, partner=partner, operation=operation, url=url,
        text=text,
    )
    if error is not None:
        raise error
