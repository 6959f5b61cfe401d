"""Registry failures, translated once into the Relais error tree.

    what happened                          error (relais/errors.py base)          retriable
    ├── quota exceeded: HTTP 429           RegistryQuotaError (PartnerTransient)  yes, after
    │                                      ``retry_after`` (Retry-After seconds)
    ├── unavailable: 5xx, timeout, network RegistryUnavailableError (Transient)   yes
    ├── not diffusible: Sirene 403 with    RegistryNotDiffusibleError             no
    │   "non diffusable", Entreprise 451   (PartnerRefusedError)
    ├── key or token refused: 401, other   PartnerAuthError                       no
    │   403
    ├── our request refused: 400, 422      PartnerPermanentError                  no
    └── answer unreadable or too large     PartnerReplyError / ...TooLargeError   no

A number the registry does not know (404) is **not** an error: the connectors answer
:class:`connectors.registries.models.NotFound`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from relais.errors import (
    PartnerAuthError,
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerTimeoutError,
    PartnerTransientError,
)

DEFAULT_RETRY_AFTER = 60.0  # one quota window when a 429 names no Retry-After
MAX_RETRY_AFTER = 3600.0


class RegistryQuotaError(PartnerTransientError):
    code = "registry_quota"


class RegistryUnavailableError(PartnerTransientError):
    code = "registry_unavailable"


class RegistryNotDiffusibleError(PartnerRefusedError):
    """The registry holds the number but may not show it (non-diffusible unit)."""

    code = "registry_not_diffusible"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped at 1 h."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


@contextmanager
def transport_errors(registry: str, what: str) -> Iterator[None]:
    """Translate httpx's request errors raised inside the block (the registry was not read)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise PartnerTimeoutError(
            f"{registry}: {what} timed out ({type(exc).__name__})", partner=registry
        ) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
        raise RegistryUnavailableError(
            f"{registry}: {what} failed ({type(exc).__name__}: {exc})", partner=registry
        ) from exc
    except (httpx.DecodingError, httpx.TooManyRedirects) as exc:
        raise PartnerReplyError(
            f"{registry}: {what} answered unreadably ({type(exc).__name__})", partner=registry
        ) from exc
    except httpx.RequestError as exc:  # LocalProtocolError, UnsupportedProtocol, …
        raise PartnerPermanentError(
            f"{registry}: {what} could not be sent ({type(exc).__name__}: {exc})",
            partner=registry,
        ) from exc


def status_error(
    registry: str, what: str, status: int, message: str, retry_after: str | None
) -> PartnerAuthError | PartnerPermanentError | PartnerTransientError:
    """The error for a non-2xx status that the registry module did not read as a result."""
    text = f"{registry}: {what} answered HTTP {status}: {message}".rstrip(": ")
    if status == 429:
        seconds = retry_after_seconds(retry_after)
        return RegistryQuotaError(
            text,
            partner=registry,
            status=status,
            retry_after=DEFAULT_RETRY_AFTER if seconds is None else seconds,
        )
    if status >= 500:
        return RegistryUnavailableError(
            text, partner=registry, status=status, retry_after=retry_after_seconds(retry_after)
        )
    if status in (401, 403):
        return PartnerAuthError(text, partner=registry, status=status)
    return PartnerPermanentError(text, partner=registry, status=status)
