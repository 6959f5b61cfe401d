"""One S²LOW connector per TdT account: the shared registry with the S²LOW factory.

The TLS client certificate, its key and an optional CA file are files the
member's ``tdt`` account names; the HTTP Basic password and the key's password
are read from the environment variables it names, when the connector is first
built (see :mod:`connectors.http.registry`). No secret travels in Kafka or
reaches a log. :meth:`TdtConnectors.aclose` closes every client.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import httpx

from connectors.http.client import PartnerTimeouts
from connectors.http.registry import PartnerConnectors
from connectors.tdt.client import LABEL
from connectors.tdt.s2low import S2lowConnector
from relais.members.model import TDT, Member, PartnerAccount

MAX_CONNECTIONS = 4
"""Connections kept to one TdT account, and its requests in flight at once.

The acts stages handle 16 records at once, and a member's actes come in bursts (a
council's délibérations): with httpx's pool each of them opened its own connection, a
TLS handshake on both sides (the ladder's L2 acts-delivery held ~290 connections to the
sandbox for 20 members). Four are kept alive and reused; further calls wait their turn."""


def s2low_connector(
    client: httpx.AsyncClient, account: PartnerAccount, member: Member, *,
    max_in_flight: int | None = None,
) -> S2lowConnector:
    """The S²LOW connector of a member's TdT account, on the account's client."""
    return S2lowConnector(client, base_url=account.url, partner=TDT, max_in_flight=max_in_flight)


class TdtConnectors(PartnerConnectors[S2lowConnector]):
    """The S²LOW connectors of the members' ``tdt`` accounts."""

    def __init__(
        self,
        *,
        timeout: float | PartnerTimeouts = 30.0,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        timeouts = timeout if isinstance(timeout, PartnerTimeouts) else PartnerTimeouts.uniform(
            timeout
        )
        super().__init__(TDT, partial(s2low_connector, max_in_flight=max_connections),
                         label=LABEL, timeouts=timeouts, environ=environ, transport=transport,
                         max_connections=max_connections)
