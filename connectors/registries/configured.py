"""The registry clients the hub's settings configure (``RELAIS_REGISTRY_*``).

Sirene is configured by ``registry_sirene_url``, API Entreprise by
``registry_entreprise_url`` plus ``registry_entreprise_recipient``; an empty URL leaves
that registry out. Secrets never sit in the settings: ``registry_sirene_key_env`` and
``registry_entreprise_token_env`` name the environment variables that hold them. The
Annuaire answers a different question (offices by commune) and is not a look-up registry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.http.client import PartnerTimeouts
from connectors.registries.entreprise import CallContext, EntrepriseConnector, entreprise_headers
from connectors.registries.http import build_registry_client
from connectors.registries.sirene import SireneConnector, sirene_headers
from relais.errors import ConfigurationError

CALL_CONTEXT = "Relais"
CALL_OBJECT = "look-up for a member of the platform"


@dataclass(frozen=True)
class RegistryQuota:
    limit: int
    window_seconds: float


@dataclass
class ConfiguredRegistries:
    """The configured connectors by registry name, their quotas, and the clients to close."""

    connectors: dict[str, Any] = field(default_factory=dict)
    quotas: dict[str, RegistryQuota] = field(default_factory=dict)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def _secret(environ: Mapping[str, str], variable: str, what: str) -> str:
    value = environ.get(variable, "")
    if not value:
        raise ConfigurationError(f"{what}: the environment variable {variable} is empty")
    return value


def configured_registries(
    settings: Any,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ConfiguredRegistries:
    """Clients for every registry ``settings`` configures (ConfigurationError when one is
    configured without its secret)."""
    env = os.environ if environ is None else environ
    timeouts = PartnerTimeouts(connect=5.0, read=float(settings.registry_timeout_seconds),
                               write=10.0, pool=5.0)
    ca_file = settings.registry_ca_file or None
    window = float(settings.registry_quota_window_seconds)
    out = ConfiguredRegistries()
    if settings.registry_sirene_url:
        key = _secret(env, settings.registry_sirene_key_env, "Sirene")
        client = build_registry_client(
            settings.registry_sirene_url, registry="sirene", headers=sirene_headers(key),
            timeout=timeouts, ca_file=ca_file, transport=transport,
        )
        out.clients.append(client)
        out.connectors["sirene"] = SireneConnector(client)
        out.quotas["sirene"] = RegistryQuota(int(settings.registry_sirene_quota), window)
    if settings.registry_entreprise_url:
        token = _secret(env, settings.registry_entreprise_token_env, "API Entreprise")
        call = CallContext(CALL_CONTEXT, settings.registry_entreprise_recipient, CALL_OBJECT)
        client = build_registry_client(
            settings.registry_entreprise_url, registry="entreprise",
            headers=entreprise_headers(token), timeout=timeouts, ca_file=ca_file,
            transport=transport,
        )
        out.clients.append(client)
        out.connectors["entreprise"] = EntrepriseConnector(client, call)
        out.quotas["entreprise"] = RegistryQuota(int(settings.registry_entreprise_quota), window)
    return out
