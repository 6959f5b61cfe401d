"""The TdT's TLS refusal detection: now shared by every partner, in :mod:`connectors.http.tls`."""

from connectors.http.tls import (
    CERTIFICATE_ALERTS,
    PROBE_SECONDS,
    CertificateCheckingTransport,
    TlsClientAuthError,
    certificate_refusal,
)

__all__ = [
    "CERTIFICATE_ALERTS",
    "PROBE_SECONDS",
    "CertificateCheckingTransport",
    "TlsClientAuthError",
    "certificate_refusal",
]
