"""Build the httpx client the TdT connector is given.

The connector never builds its own client: the composition root calls
:func:`build_tdt_client` with the member's TLS client certificate and optional
HTTP Basic account and hands the result to ``S2lowConnector``. Tests pass an
``httpx.MockTransport`` or an ``httpx.ASGITransport`` instead.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import structlog

from relais.errors import ConfigurationError

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
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one TdT account, with ``url`` as its base URL.

    ``cert_file``/``key_file`` (PEM) authenticate the member with a TLS client
    certificate, as S²LOW requires; ``ca_file`` replaces the system CA store
    for a TdT with a private CA. ``basic_user``/``basic_password`` add HTTP
    Basic. ``timeout`` applies to connect, read, write and pool waits unless a
    full ``httpx.Timeout`` is given. Raises :class:`ConfigurationError` for a
    missing or unreadable certificate. The caller closes the client.
    """
    if key_file is not None and cert_file is None:
        raise ConfigurationError("tdt client: key_file given without cert_file")
    if (basic_user is None) != (basic_password is None):
        raise ConfigurationError("tdt client: basic_user and basic_password go together")
    verify: ssl.SSLContext | bool = True
    if cert_file is not None or ca_file is not None:
        try:
            context = ssl.create_default_context(
                cafile=str(ca_file) if ca_file is not None else None
            )
            if cert_file is not None:
                context.load_cert_chain(
                    str(cert_file),
                    str(key_file) if key_file is not None else None,
                    password=key_password,
                )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"tdt client: cannot load TLS material: {exc}") from exc
        verify = context
    auth = httpx.BasicAuth(basic_user, basic_password) if basic_user and basic_password else None
    log.debug(
        "tdt_client_built",
        url=url,
        client_certificate=cert_file is not None,
        basic_user=basic_user,
    )
    return httpx.AsyncClient(
        base_url=url,
        verify=verify,
        auth=auth,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        transport=transport,
        follow_redirects=False,
    )
