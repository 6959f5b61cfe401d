"""Registry failures, translated once into the Relais error tree.

    what happened                          error (relais/errors.py base)          retriable
    ├── quota exceeded: HTTP 429           RegistryQuotaError (PartnerTransient)  yes, after
    │                                      ``retry_after`` (Retry-After seconds)
    ├── unavailable: 5xx                   RegistryUnavailableError (Transient)   yes
    ├── transport failures (timeout,       connectors.http.errors table           by row
    │   network, TLS)                      (PartnerTimeoutError, …Transient, …)
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

from datetime import datetime

from connectors.http.errors import parse_retry_after
from relais.errors import (
    PartnerAuthError,
    PartnerPermanentError,
    PartnerRefusedError,
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
    seconds = parse_retry_after(value, now=now)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


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
