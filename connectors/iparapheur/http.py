"""The httpx client the i-Parapheur connector is given.

i-Parapheur is reached as the TdT is: a TLS client certificate per member and HTTP Basic
(Pastell passes ``login``/``password`` to PHP's SoapClient with the certificate,
``connecteur/iParapheur/IParapheur.php`` ``getClient``). The shared partner client factory
(:func:`connectors.http.client.build_partner_client`: certificate loading,
refused-certificate detection) builds it with ``partner="iparapheur"``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from connectors.http.client import PartnerTimeouts, build_partner_client


def build_iparapheur_client(
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
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one member's i-Parapheur account; the caller closes it.

    ``url`` is the SOAP endpoint (``…/ws-iparapheur-no-mtom``). Raises
    ``ConfigurationError`` for unreadable files and ``PartnerAuthError`` for a key its
    password does not open.
    """
    return build_partner_client(
        url,
        partner="iparapheur",
        label="i-Parapheur",
        cert_file=cert_file,
        key_file=key_file,
        key_password=key_password,
        ca_file=ca_file,
        basic_user=basic_user,
        basic_password=basic_password,
        timeout=timeout,
        transport=transport,
        member=member,
    )
