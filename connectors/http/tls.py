"""Tell a refused TLS client certificate from a network failure, for any HTTPS partner.

What httpx raises when a partner (first measured with the TdT) refuses the member's
certificate depends on the server
(measured against the HTTPS sandbox, TLS 1.3, and read from OpenSSL's alerts):

- a server that sends a TLS alert (Apache ``SSLVerifyClient require``): a
  ``ConnectError`` or ``ReadError`` whose cause is an ``ssl.SSLError`` named after
  the alert (``TLSV13_ALERT_CERTIFICATE_REQUIRED``, ``TLSV1_ALERT_UNKNOWN_CA``,
  ``SSLV3_ALERT_BAD_CERTIFICATE``…);
- a server that just closes (Python's asyncio, so the sandbox): in TLS 1.3 the
  client's handshake has already succeeded, so the request fails with
  ``httpx.ReadError`` caused by ``ConnectionResetError`` — indistinguishable from a
  network failure by its type;
- a partner whose server certificate the member does not trust: ``httpx.ConnectError``
  caused by ``ssl.SSLCertVerificationError`` (``CERTIFICATE_VERIFY_FAILED``).

:class:`CertificateCheckingTransport` wraps the connector's transport: a transport
error naming a certificate alert becomes :class:`TlsClientAuthError` at once; a
bare reset or EOF on an HTTPS request (with or without a client certificate) is
checked with one probe connection (handshake, then a short read without sending
anything: a server that accepted the certificate waits for the request, one that
refused it closes or sends an alert; an unreachable server is no refusal).
``connectors/http/errors.py`` maps :class:`TlsClientAuthError` to the non-retriable
``PartnerAuthError``; anything else keeps its own (retriable) type.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx
import structlog

log = structlog.get_logger(__name__)

CERTIFICATE_ALERTS = (
    "CERTIFICATE_REQUIRED",
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
)
"""Fragments of OpenSSL alert reasons that mean the server refused our certificate."""

PROBE_SECONDS = 2.0


class TlsClientAuthError(httpx.TransportError):
    """The partner refused the TLS client certificate, or its own certificate is not trusted."""


def certificate_refusal(exc: BaseException) -> str | None:
    """Why the TLS layer refused the connection, when ``exc``'s chain says so; else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or str(current)
            return f"the partner's server certificate is not trusted ({detail}): check the CA file"
        if isinstance(current, ssl.SSLError):
            reason = str(current.reason or "")
            if any(alert in reason for alert in CERTIFICATE_ALERTS):
                return f"the partner refused the client certificate (TLS alert {reason})"
        current = current.__cause__ or current.__context__
    return None


def _probe(host: str, port: int, context: ssl.SSLContext, seconds: float) -> str | None:
    """Handshake, then read without sending: a refusal reason, or None (accepted/unknown)."""
    try:
        raw = socket.create_connection((host, port), timeout=seconds)
    except OSError:
        return None  # the partner is unreachable: a network failure, not a refusal
    with raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=host)
        except ssl.SSLError as exc:
            return certificate_refusal(exc) or (
                f"the partner ended the TLS handshake ({exc.reason or exc}): client certificate "
                "refused?"
            )
        except OSError:
            return None
        with tls:
            tls.settimeout(seconds)
            try:
                data = tls.recv(1)
            except TimeoutError:
                return None  # it waits for a request: the certificate was accepted
            except ssl.SSLError as exc:
                return certificate_refusal(exc) or (
                    f"the partner closed the TLS session after the handshake ({exc.reason or exc})"
                )
            except ConnectionError:
                data = b""
            if data:
                return None
            return (
                "the partner closed the connection right after the TLS handshake, before any "
                "request: it refused the client certificate (missing, or not issued by a CA it "
                "trusts)"
            )


class CertificateCheckingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; raises :class:`TlsClientAuthError` for a refused certificate."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        context: ssl.SSLContext,
        *,
        who: str,
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self._inner = inner
        self._context = context
        self._who = who
        self._probe_seconds = probe_seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except (httpx.ConnectError, httpx.ReadError, httpx.WriteError,
                httpx.RemoteProtocolError) as exc:
            reason = certificate_refusal(exc)
            if reason is None and request.url.scheme == "https":
                port = request.url.port or 443
                reason = await asyncio.to_thread(
                    _probe, request.url.host, port, self._context, self._probe_seconds
                )
            if reason is None:
                raise
            log.warning("partner.tls_refused", who=self._who, url=str(request.url.copy_with(
                query=None)), reason=reason, transport_error=type(exc).__name__)
            raise TlsClientAuthError(f"{self._who}: {reason}", request=request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
