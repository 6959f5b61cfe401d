"""Translation of httpx failures, TdT HTTP statuses and S²LOW's ``KO`` into the error tree.

The httpx table and the generic status rules are shared by every partner
(:mod:`connectors.http.errors`); this module adds what is the TdT's own (the
redirect to a login page, the ``KO`` answers). Every failure the TdT connector
can meet crosses one of them exactly once:

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

    HTTP reply status                              Relais error
    ├── 429, 5xx                                   PartnerTransientError  (retry_after: Retry-After)
    ├── 401, 403                                   PartnerAuthError       (names the TdT's URL)
    ├── 3xx to a login/authentication page         PartnerAuthError
    ├── other 3xx (only the connector follows the  PartnerReplyError
    │   two download redirects S²LOW makes)
    └── other 4xx                                  PartnerPermanentError  with the TdT's text

    S²LOW's own answer (HTTP 200)                   Relais error
    ├── ``KO`` + authentication/permission text    PartnerAuthError
    └── ``KO`` + anything else                     PartnerRefusedError    its text as message

S²LOW answers a refusal with HTTP **200** and ``KO\n<message>\n``
(``class/Helpers/ResponseHelper.php`` ``returnAndExit``): the message is passed
through ``htmlspecialchars`` and converted to ISO-8859-1. A few scripts
(``actes_transac_get_status.php``, ``actes_transac_get_document.php``,
``actes_transac_get_tampon.php``) ``echo`` their literal ``KO`` lines as the
PHP file holds them, in UTF-8; :func:`tdt_text` reads both.

The transport table is explicit: ``tests/unit/test_http_errors.py`` and
``tests/unit/test_tdt_connector.py`` fail when httpx grows a request error class
that no row covers. At run time such a class is still translated (to a retriable
error) and logged as unmapped.
"""

from __future__ import annotations

import html
import re

import httpx

from connectors.http.errors import (
    TRANSPORT_ERRORS,
    error_class_for,
    http_status_error,
    map_transport_errors,
    parse_retry_after,
)
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerRefusedError,
    PartnerReplyError,
    Reason,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "decode_text",
    "error_class_for",
    "is_auth_text",
    "is_ko",
    "ko_message",
    "map_transport_errors",
    "parse_retry_after",
    "refusal",
    "reply_error",
    "status_error",
    "tdt_text",
]


def decode_text(body: bytes) -> str:
    """Decode a TdT text reply: UTF-8 when it is, ISO-8859-1 otherwise (S²LOW mixes both)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("iso-8859-1")


def tdt_text(body: bytes) -> str:
    """S²LOW's human text: decoded, ``htmlspecialchars`` entities undone, ``<br/>`` as newlines."""
    text = html.unescape(decode_text(body))
    return re.sub(r"<br\s*/?>", "\n", text, flags=re.IGNORECASE)


_KO_PREFIX = re.compile(r"\s*KO(?:[ \t]*:[ \t]*|[ \t]*\r?\n|[ \t]*$)")


def is_ko(body: bytes) -> bool:
    """True when a text reply starts with ``KO`` (``KO\\n…``, or ``KO : …`` from reply create)."""
    return _KO_PREFIX.match(body[:64].decode("iso-8859-1")) is not None


def ko_message(body: bytes) -> str:
    """The human text of a ``KO`` reply, without its ``KO`` line; the whole text otherwise."""
    text = tdt_text(body)
    match = _KO_PREFIX.match(text)
    return (text[match.end() :] if match else text).strip()


_AUTH_TEXTS = re.compile(
    r"[ée]chec de l.authentification|acc[eè]s refus[ée]|certificat n.est pas valide"
    r"|n[ée]cessite un certificat|connexion impossible",
    re.IGNORECASE,
)
"""KO texts that mean the account or its certificate was refused, not the request.

``Échec de l'authentification`` and ``Accès refusé`` are the KO lines of every
actes script (``User::authenticate``, ``checkDroit``); ``La télétransmission
nécessite un certificat RGS`` comes from ``actes_transac_create.php``
(``RgsConnexion``); ``Le certificat n'est pas valide`` from the Symfony
authenticator of recent S²LOW versions.
"""


def is_auth_text(text: str) -> bool:
    """True when a KO text says the credentials or the certificate were refused."""
    return _AUTH_TEXTS.search(text) is not None


def refusal(
    body: bytes,
    *,
    partner: str,
    operation: str,
    status: int,
    url: str,
    field: str = "acte",
) -> PartnerAuthError | PartnerRefusedError:
    """The error a ``KO`` reply means: an authentication refusal or a business refusal.

    A business refusal carries S²LOW's own text as its message and one reason
    ``(field, "tdt_refused", text)``; an authentication refusal names the
    TdT's ``url`` (the member's TdT) so an operator knows which account to fix.
    """
    text = ko_message(body)[:2000] or "KO without a message"
    if is_auth_text(text):
        return PartnerAuthError(
            f"{operation}: the TdT at {url} refused this account: {text}",
            partner=partner,
            status=status,
        )
    return PartnerRefusedError(
        text, partner=partner, status=status, reasons=[Reason(field, "tdt_refused", text)]
    )


_AUTH_LOCATION = re.compile(r"login|connexion|authenticat|auth[-_/]", re.IGNORECASE)


def status_error(
    status: int,
    headers: httpx.Headers,
    body: bytes,
    *,
    partner: str,
    operation: str,
    url: str,
) -> PartnerError | None:
    """The error an HTTP status means, or None for a 2xx reply.

    ``body`` is the (capped) start of the reply, quoted in the message. A 3xx
    reaching here is one the connector does not follow.
    """
    if 300 <= status < 400:
        where = headers.get("Location", "")
        if _AUTH_LOCATION.search(where):
            return PartnerAuthError(
                f"{operation}: the TdT at {url} sent this account to {where!r} "
                f"(HTTP {status}): authentication refused",
                partner=partner,
                status=status,
            )
    text = ko_message(body)[:500] if not 200 <= status < 300 else ""
    return http_status_error(
        status, headers, partner=partner, operation=operation, url=url, text=text, label="TdT"
    )


def reply_error(partner: str, operation: str, why: str, body: bytes) -> PartnerReplyError:
    """The TdT answered 2xx with something this connector cannot read."""
    preview = decode_text(body[:200])
    return PartnerReplyError(f"{operation}: {why}; reply starts {preview!r}", partner=partner)
