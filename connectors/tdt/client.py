"""Build the httpx client the TdT connector is given (see :mod:`connectors.http.client`).

The connector never builds its own client: the registry (or a test) calls
:func:`build_tdt_client` with the member's TLS client certificate (PEM
certificate, key, the key's password) and optional HTTP Basic account and hands
the result to ``S2lowConnector``. Tests pass an ``httpx.MockTransport`` or an
``httpx.ASGITransport`` instead. Errors name the TdT ("TdT" label, partner
``tdt``).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from connectors.http.client import PartnerTimeouts, build_partner_client

LABEL = "TdT"
"""How the TdT is named in messages."""


def build_tdt_client(
    url: str,
    *,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    key_password: str | None = None,
    ca_file: str | Path | None = None,
    basic_user: str | None = None,
    basic_password: str | None = None,
    timeout: float | httpx.Timeout | PartnerTimeouts = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    member: str | None = None,
    partner: str = "tdt",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one TdT account: :func:`build_partner_client` for the TdT.

    Raises :class:`ConfigurationError` for a missing or unreadable file and
    :class:`PartnerAuthError` for a key its password does not open.
    """
    return build_partner_client(
        url,
        partner=partner,
        label=LABEL,
        member=member,
        cert_file=cert_file,
        key_file=key_file,
        key_password=key_password,
        ca_file=ca_file,
        basic_user=basic_user,
        basic_password=basic_password,
        timeout=timeout,
        transport=transport,
    )
