"""Translation of everything an i-Parapheur call can fail with into the Relais error tree.

    failure                                          Relais error
    ├── httpx request errors                         the shared partner transport table
    │   (timeouts, resets, TLS refusals…)            (connectors/http/errors.py): timeouts and
    │                                                network errors retriable, refused client
    │                                                certificate PartnerAuthError
    ├── HTTP 401 / 403                               PartnerAuthError   (account or certificate)
    ├── HTTP 429, 5xx without a SOAP fault           PartnerTransientError
    ├── other HTTP status without a SOAP fault       PartnerPermanentError
    ├── reply over the operation's size cap          PartnerReplyTooLargeError
    ├── reply that is not a SOAP envelope            PartnerReplyError
    ├── SOAP fault, faultcode ``Client``             PartnerPermanentError (our request)
    ├── SOAP fault, faultcode ``Server`` or other    PartnerTransientError (i-Parapheur failed
    │                                                while processing, e.g. Alfresco busy)
    ├── SOAP fault naming authentication/access      PartnerAuthError
    └── ``MessageRetour/codeRetour`` KO              PartnerRefusedError, i-Parapheur's words
                                                     ("[severite] message")

Messages name the operation and i-Parapheur's text, never an httpx or zeep type as the
error itself: callers decide on the class and ``retriable`` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import structlog
from zeep import exceptions as zeep_exceptions

from connectors.http.errors import error_class_for
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerTransientError,
    Reason,
)

log = structlog.get_logger(__name__)

PARTNER = "iparapheur"

_AUTH_TEXT = re.compile(
    r"authenticat|unauthori[sz]ed|access denied|acc[eè]s refus|forbidden|bad credentials"
    r"|mot de passe|identifiant",
    re.IGNORECASE,
)


def http_status_error(operation: str, status: int, url: str) -> PartnerError:
    """The error an HTTP status without a SOAP fault means."""
    if status in (401, 403):
        return PartnerAuthError(
            f"{operation}: i-Parapheur at {url} refused this account (credentials or "
            "client certificate)",
            partner=PARTNER,
        )
    if status == 429 or status >= 500:
        return PartnerTransientError(
            f"{operation}: i-Parapheur is unavailable (server error, no SOAP answer)",
            partner=PARTNER,
        )
    return PartnerPermanentError(
        f"{operation}: i-Parapheur refused the HTTP request (no SOAP answer)", partner=PARTNER
    )


def fault_error(operation: str, fault: zeep_exceptions.Fault) -> PartnerError:
    """The error a SOAP fault means, with i-Parapheur's fault string as the message."""
    text = (fault.message or "SOAP fault without a message").strip()[:2000]
    code = (fault.code or "").rsplit(":", 1)[-1]
    message = f"{operation}: i-Parapheur SOAP fault ({code or 'no code'}): {text}"
    if _AUTH_TEXT.search(text):
        return PartnerAuthError(message, partner=PARTNER)
    if code == "Client":
        return PartnerPermanentError(message, partner=PARTNER)
    return PartnerTransientError(message, partner=PARTNER)


def refused(operation: str, code: str | None, message: str | None, severity: str | None,
            *, field: str = "dossier") -> PartnerError:
    """The error a ``MessageRetour`` other than OK means (i-Parapheur's own words)."""
    text = f"[{severity or '?'}] {message or ''}".strip()[:2000]
    if not code:
        return PartnerReplyError(
            f"{operation}: i-Parapheur answered without a codeRetour: {text}", partner=PARTNER
        )
    if _AUTH_TEXT.search(message or ""):
        return PartnerAuthError(f"{operation}: {text}", partner=PARTNER)
    return PartnerRefusedError(
        text, partner=PARTNER, reasons=[Reason(field, "iparapheur_refused", text)]
    )


@contextmanager
def translated(operation: str, url: str) -> Iterator[None]:
    """Re-raise httpx and zeep failures raised inside the block as :class:`PartnerError`."""
    try:
        yield
    except PartnerError:
        raise
    except httpx.RequestError as exc:
        error_type = error_class_for(type(exc)) or PartnerTransientError
        detail = str(exc) or type(exc).__name__
        raise error_type(f"{operation}: {detail}", partner=PARTNER) from exc
    except zeep_exceptions.Fault as exc:
        raise fault_error(operation, exc) from exc
    except zeep_exceptions.TransportError as exc:
        status = exc.status_code or 0
        if status and status != 200:
            raise http_status_error(operation, status, url) from exc
        raise PartnerReplyError(
            f"{operation}: i-Parapheur's answer is not a SOAP envelope", partner=PARTNER
        ) from exc
    except (zeep_exceptions.XMLSyntaxError, zeep_exceptions.XMLParseError,
            zeep_exceptions.ValidationError, zeep_exceptions.LookupError) as exc:
        raise PartnerReplyError(
            f"{operation}: i-Parapheur's answer cannot be read: {exc}", partner=PARTNER
        ) from exc
    except zeep_exceptions.Error as exc:
        log.warning("iparapheur.unmapped_error", operation=operation, error=type(exc).__name__)
        raise PartnerReplyError(f"{operation}: {exc}", partner=PARTNER) from exc
