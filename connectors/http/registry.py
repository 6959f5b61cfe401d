"""One connector per (partner, member account), built on first use, reused, closed together.

A partner connector plugs in with a factory ``(client, account, member) -> connector``:
the registry reads the member's account for its partner, builds the httpx client
(:func:`connectors.http.client.account_client`: certificate, Basic, credential
headers, timeouts; secrets read from the environment variables the account
names, when the connector is first built), calls the factory and keeps the pair.
No secret travels in Kafka or reaches a log.

Connectors are cached per partner and account settings: members sharing one
account (the same URL, login, certificate, credentials) share one connector, and
a member whose account changed gets a new one. ``max_connections`` caps each
account's connections (:func:`connectors.http.client.build_partner_client`).
:meth:`PartnerConnectors.aclose` closes every client.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

import httpx

from connectors.http.client import PartnerTimeouts, account_client
from relais.errors import ConfigurationError
from relais.members.model import Member, PartnerAccount

C = TypeVar("C")

ConnectorFactory = Callable[[httpx.AsyncClient, PartnerAccount, Member], C]
"""Builds a partner's connector from the account's client, the account and its member."""


def account_key(account: PartnerAccount) -> Hashable:
    """What identifies an account's client: every setting that changes the client."""
    return (
        account.url,
        account.login,
        account.password_env,
        account.cert_file,
        account.key_file,
        account.key_password_env,
        account.ca_file,
        account.api_key_env,
        account.token_env,
        tuple(sorted(account.options.items())),
    )


class PartnerConnectors(Generic[C]):
    """The connectors of one partner, one per member account."""

    def __init__(
        self,
        partner: str,
        factory: ConnectorFactory[C],
        *,
        label: str | None = None,
        timeouts: PartnerTimeouts | None = None,
        api_key_header: str | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.partner = partner
        self._factory = factory
        self._label = label or partner
        self._timeouts = timeouts or PartnerTimeouts()
        self._api_key_header = api_key_header
        self._environ = environ
        self._transport = transport
        self._max_connections = max_connections
        self._cache: dict[Hashable, tuple[httpx.AsyncClient, C]] = {}

    def for_member(self, member: Member) -> C:
        """The connector of the member's account with this partner.

        Raises ConfigurationError (not retriable) when the member has no account
        with the partner, a file it names cannot be read or a variable it names is
        unset; PartnerAuthError when its key password does not open its key.
        """
        account = member.account(self.partner)
        if account is None:
            raise ConfigurationError(f"member {member.siren} has no {self._label} configured")
        key = account_key(account)
        cached = self._cache.get(key)
        if cached is not None:
            return cached[1]
        client = account_client(
            account,
            partner=self.partner,
            member=member.siren,
            label=self._label,
            environ=self._environ,
            timeouts=self._timeouts,
            api_key_header=self._api_key_header,
            transport=self._transport,
            max_connections=self._max_connections,
        )
        connector = self._factory(client, account, member)
        self._cache[key] = (client, connector)
        return connector

    def __len__(self) -> int:
        return len(self._cache)

    async def aclose(self) -> None:
        """Close every client built so far; the registry can be used again afterwards."""
        cached = list(self._cache.values())
        self._cache.clear()
        for client, _ in cached:
            await client.aclose()

