"""One i-Parapheur connector per member account, on the shared partner registry.

The account (``Member.accounts["iparapheur"]``) names the SOAP endpoint (``url``), the
HTTP Basic login and the variable holding its password, the TLS client certificate, and
in its options where the WSDL is (``wsdl``: a path or URL; ``<url>?wsdl`` by default, as
i-Parapheur serves it). The WSDL is parsed once per location and shared by every
connector (:func:`connectors.iparapheur.load_wsdl`).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from agents.signature.settings import PARTNER
from connectors.http.client import PartnerTimeouts
from connectors.http.registry import PartnerConnectors
from connectors.iparapheur import IParapheurConnector, load_wsdl
from relais.members.model import Member, PartnerAccount


def wsdl_location(account: PartnerAccount) -> str:
    """Where the account's WSDL is read from."""
    return account.option("wsdl") or f"{account.url}?wsdl"


def iparapheur_connector(client: httpx.AsyncClient, account: PartnerAccount,
                         member: Member) -> IParapheurConnector:
    return IParapheurConnector(client, endpoint=account.url,
                               wsdl=load_wsdl(wsdl_location(account)), member=member.siren)


class IParapheurConnectors(PartnerConnectors[IParapheurConnector]):
    """The i-Parapheur connectors of the members' ``iparapheur`` accounts."""

    def __init__(self, *, timeout: float = 30.0, environ: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(PARTNER, iparapheur_connector, label="i-Parapheur",
                         timeouts=PartnerTimeouts.uniform(timeout), environ=environ,
                         transport=transport)

    async def aclose(self) -> None:
        """Close every connector's own WSDL client, then the account clients."""
        for _, connector in list(self._cache.values()):
            await connector.aclose()
        await super().aclose()
