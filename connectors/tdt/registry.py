"""One S²LOW connector per TdT account, built from the member registry's settings.

Passwords are read from the environment variable the member's settings name;
they never travel in Kafka and are never logged. Clients are cached per
(url, login) and closed with :meth:`TdtConnectors.aclose`.
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
        self._cache: dict[tuple[str, str], tuple[httpx.AsyncClient, S2lowConnector]] = {}

    def for_member(self, member: Member) -> S2lowConnector:
        """The connector of the member's TdT account.

        Raises ConfigurationError (not retriable) when the member has no TdT
        settings or its password variable is unset.
        """
        settings = member.tdt
        if settings is None:
            raise ConfigurationError(f"member {member.siren} has no TdT configured")
        key = (settings.url, settings.login)
        cached = self._cache.get(key)
        if cached is not None:
            return cached[1]
        password = self._environ.get(settings.password_env) if settings.password_env else None
        if settings.password_env and password is None:
            raise ConfigurationError(
                f"the TdT password of member {member.siren} is expected in the environment "
                f"variable {settings.password_env}, which is not set"
            )
        client = build_tdt_client(
            settings.url,
            cert_file=settings.cert_file,
            key_file=settings.key_file,
            basic_user=settings.login if password is not None else None,
            basic_password=password,
            timeout=self._timeout,
            transport=self._transport,
        )
        connector = S2lowConnector(client, base_url=settings.url, partner="tdt")
        self._cache[key] = (client, connector)
        return connector

    async def aclose(self) -> None:
        for client, _ in self._cache.values():
            await client.aclose()
        self._cache.clear()
