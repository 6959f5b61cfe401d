"""One S²LOW connector per TdT account: the shared registry with the S²LOW factory.

The TLS client certificate, its key and an optional CA file are files the
member's ``tdt`` account names; the HTTP Basic password and the key's password
are read from the environment variables it names, when the connector is first
built (see :mod:`connectors.http.registry`). No secret travels in Kafka or
reaches a log. :meth:`TdtConnectors.aclose` closes every client.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from connectors.http.client import PartnerTimeouts
from connectors.http.registry import PartnerConnectors
from connectors.tdt.client import LABEL
from connectors.tdt.s2low import S2lowConnector
from relais.members.model import TDT, Member, PartnerAccount


def s2low_connector(
    client: httpx.AsyncClient, account: PartnerAccount, member: Member
) -> S2lowConnector:
    """The S²LOW connector of a member's TdT account, on the account's client."""
    return S2lowConnector(client, base_url=account.url, partner=TDT)


class TdtConnectors(PartnerConnectors[S2lowConnector]):
    """The S²LOW connectors of the members' ``tdt`` accounts."""

    def __init__(
        self,
        *,
        timeout: float | PartnerTimeouts = 30.0,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        timeouts = timeout if isinstance(timeout, PartnerTimeouts) else PartnerTimeouts.uniform(
            timeout
        )
        super().__init__(TDT, s2low_connector, label=LABEL, timeouts=timeouts, environ=environ,
                         transport=transport)
