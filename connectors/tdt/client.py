"""Build the httpx client the TdT connector is given.

The connector never builds its own client: the composition root calls
:func:`build_tdt_client` with the member's TLS client certificate (PEM
certificate, key, the key's password) and optional HTTP Basic account and hands
the result to ``S2lowConnector``. Tests pass an ``httpx.MockTransport`` or an
``httpx.ASGITransport`` instead.

A TdT that refuses the certificate, a key whose password is wrong and a TdT
server certificate the CA file does not vouch for all end as the non-retriable
``PartnerAuthError`` naming the member and the TdT's URL (see
:mod:`connectors.tdt.tls` for how a refusal is told from a network failure).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import structlog

from connectors.tdt.tls import CertificateCheckingTransport
from relais.errors import ConfigurationError, PartnerAuthError

log = structlog.get_logger(__name__)


def build_tdt_client(
    url: str,
    *,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    key_password: str | None = None,
    ca_file: str | Path | None = None,
    basic_user: str | None = None,
    basic_password: str | None = None,
    timeout: float | httpx.Timeout = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    member: str | None = None,
    partner: str = "tdt",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one TdT account, with ``url`` as its base URL.

    ``cert_file``/``key_file`` (PEM) authenticate the member with a TLS client
    certificate, as S²LOW requires; ``key_password`` decrypts an encrypted key;
    ``ca_file`` replaces the system CA store for a TdT with a private CA.
    ``basic_user``/``basic_password`` add HTTP Basic. ``timeout`` applies to
    connect, read, write and pool waits unless a full ``httpx.Timeout`` is given.
    ``member`` (a SIREN) names the account in errors.

    Raises :class:`ConfigurationError` for a missing or unreadable file and
    :class:`PartnerAuthError` for a key its password does not open. The caller
    closes the client.
    """
    who = f"member {member}" if member else "TdT client"
    if key_file is not None and cert_file is None:
        raise ConfigurationError(f"{who}: TdT key_file given without cert_file")
    if (basic_user is None) != (basic_password is None):
        raise ConfigurationError(f"{who}: TdT basic_user and basic_password go together")
    context: ssl.SSLContext | None = None
    if cert_file is not None or ca_file is not None or url.startswith("https:"):
        context = _tls_context(url, cert_file, key_file, key_password, ca_file, who, partner)
    if transport is None and context is not None:
        transport = CertificateCheckingTransport(
            httpx.AsyncHTTPTransport(verify=context),
            context,
            who=f"{who}, TdT {url}",
        )
    auth = httpx.BasicAuth(basic_user, basic_password) if basic_user and basic_password else None
    log.debug(
        "tdt_client_built",
        url=url,
        member=member,
        client_certificate=cert_file is not None,
        basic_user=basic_user,
    )
    return httpx.AsyncClient(
        base_url=url,
        verify=context if context is not None else True,
        auth=auth,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        transport=transport,
        follow_redirects=False,
    )


def _tls_context(
    url: str,
    cert_file: str | Path | None,
    key_file: str | Path | None,
    key_password: str | None,
    ca_file: str | Path | None,
    who: str,
    partner: str,
) -> ssl.SSLContext:
    """The client's TLS context: CA store, and the member's certificate and key."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"{who}: cannot read the TdT CA file {ca_file}: {exc}") from exc
    if cert_file is None:
        return context
    key_path = Path(key_file) if key_file is not None else Path(cert_file)
    try:
        key_text = key_path.read_bytes()[:1_000_000]
    except OSError as exc:
        raise ConfigurationError(f"{who}: cannot read the TdT key file {key_path}: {exc}") from exc
    encrypted = b"ENCRYPTED" in key_text
    if encrypted and not key_password:
        raise ConfigurationError(
            f"{who}: the TdT key {key_path} is encrypted and no key password is configured"
        )
    try:
        # A callable, never None: OpenSSL would otherwise prompt on the terminal.
        context.load_cert_chain(
            str(cert_file),
            str(key_file) if key_file is not None else None,
            password=lambda: key_password or "",
        )
    except ssl.SSLError as exc:
        if encrypted:
            raise PartnerAuthError(
                f"{who}: the password of the TLS client key {key_path} for the TdT at {url} "
                "is wrong (the key cannot be decrypted)",
                partner=partner,
            ) from exc
        raise ConfigurationError(
            f"{who}: cannot load the TdT client certificate {cert_file} / key {key_path}: {exc}"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"{who}: cannot read the TdT client certificate {cert_file}: {exc}"
        ) from exc
    return context
