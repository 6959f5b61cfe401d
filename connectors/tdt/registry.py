"""One S²LOW connector per TdT account, built from the member registry's settings.

The TLS client certificate, its key and an optional CA file are files the
member's settings name; the HTTP Basic password and the key's password are read
from the environment variables they name, when the connector is first built. No
secret travels in Kafka or reaches a log. Clients are cached per (url, login,
certificate) and closed with :meth:`TdtConnectors.aclose`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from connectors.tdt.client import build_tdt_client
from connectors.tdt.s2low import S2lowConnector
from relais.errors import ConfigurationError
from relais.members.model import Member


class TdtConnectors:
    def __init__(
        self,
        *,
        timeout: float = 30.0,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._environ = environ if environ is not None else os.environ
        self._transport = transport
        self._cache: dict[tuple[str, str, str], tuple[httpx.AsyncClient, S2lowConnector]] = {}

    def for_member(self, member: Member) -> S2lowConnector:
        """The connector of the member's TdT account.

        Raises ConfigurationError (not retriable) when the member has no TdT
        settings, a file it names cannot be read or a variable it names is unset;
        PartnerAuthError when its key password does not open its key.
        """
        settings = member.tdt
        if settings is None:
            raise ConfigurationError(f"member {member.siren} has no TdT configured")
        key = (settings.url, settings.login, settings.cert_file or "")
        cached = self._cache.get(key)
        if cached is not None:
            return cached[1]
        password = self._secret(member, settings.password_env, "TdT password")
        key_password = self._secret(member, settings.key_password_env, "TdT key password")
        client = build_tdt_client(
            settings.url,
            cert_file=settings.cert_file,
            key_file=settings.key_file,
            key_password=key_password,
            ca_file=settings.ca_file,
            basic_user=settings.login if password is not None else None,
            basic_password=password,
            timeout=self._timeout,
            transport=self._transport,
            member=member.siren,
        )
        connector = S2lowConnector(client, base_url=settings.url, partner="tdt")
        self._cache[key] = (client, connector)
        return connector

    def _secret(self, member: Member, variable: str | None, what: str) -> str | None:
        """The value of the environment variable ``variable`` names; None when it names none."""
        if not variable:
            return None
        value = self._environ.get(variable)
        if value is None:
            raise ConfigurationError(
                f"the {what} of member {member.siren} is expected in the environment "
                f"variable {variable}, which is not set"
            )
        return value

    async def aclose(self) -> None:
        for client, _ in self._cache.values():
            await client.aclose()
        self._cache.clear()
