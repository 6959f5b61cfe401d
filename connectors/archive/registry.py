"""The archive connectors, one per member account, on the shared registry."""

from __future__ import annotations

import httpx

from connectors.archive.settings import ARCHIVE, ArchiveSettings
from connectors.archive.vitam import VitamConnector
from connectors.http.client import PartnerTimeouts
from connectors.http.registry import PartnerConnectors
from relais.members.model import Member, PartnerAccount

#: A SIP of hundreds of megabytes takes time to send: generous write and read phases.
TIMEOUTS = PartnerTimeouts(connect=10.0, read=120.0, write=120.0, pool=10.0)


def _factory(client: httpx.AsyncClient, account: PartnerAccount,
             member: Member) -> VitamConnector:
    return VitamConnector(client, ArchiveSettings.from_account(account, member.siren),
                          member=member.siren)


def archive_connectors(
    transport: httpx.AsyncBaseTransport | None = None,
) -> PartnerConnectors[VitamConnector]:
    return PartnerConnectors(ARCHIVE, _factory, label="archive", timeouts=TIMEOUTS,
                             transport=transport)
