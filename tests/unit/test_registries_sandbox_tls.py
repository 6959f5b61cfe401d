"""The registries sandbox over HTTPS: server TLS and a header credential, no client
certificate gate (SandboxPartner.client_certificates=False), so API Entreprise's bearer
token and Sirene's API key reach it as they reach the real registries."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connectors.registries.entreprise import CallContext, EntrepriseConnector, entreprise_headers
from connectors.registries.http import build_registry_client
from connectors.registries.models import RegistryRecord
from connectors.registries.sirene import SireneConnector, sirene_headers
from sandbox.catalogue import by_name
from sandbox.common.server import running_sandbox, shared_tls
from sandbox.registries.app import create_registries_sandbox
from sandbox.registries.config import (
    DEFAULT_ENTREPRISE_TOKEN,
    DEFAULT_SIRENE_KEY,
    RegistriesConfig,
)

RECIPIENT = "21210231300013"


def test_the_registries_opt_out_of_the_client_certificate_gate() -> None:
    (registries,) = by_name("registries")
    (tdt,) = by_name("tdt")
    assert registries.client_certificates is False
    assert tdt.client_certificates is True  # S²LOW keeps its certificate gate


async def test_a_bearer_token_and_an_api_key_reach_the_registries_over_https(
    tmp_path: Path,
) -> None:
    tls = shared_tls(tmp_path / "tls", [])
    app = create_registries_sandbox(RegistriesConfig(companies=10))
    async with running_sandbox(app, tls=tls, client_certificates=False) as running:
        assert running.url.startswith("https://")
        ca = tls.material.ca_file
        entreprise = build_registry_client(running.url, registry="entreprise",
                                           headers=entreprise_headers(DEFAULT_ENTREPRISE_TOKEN),
                                           ca_file=ca)
        sirene = build_registry_client(f"{running.url}/api-sirene/3.11", registry="sirene",
                                       headers=sirene_headers(DEFAULT_SIRENE_KEY), ca_file=ca)
        try:
            call = CallContext("Relais", RECIPIENT, "test")
            unit = await EntrepriseConnector(entreprise, call).lookup("212102313")
            same = await SireneConnector(sirene).lookup("212102313")
        finally:
            await entreprise.aclose()
            await sirene.aclose()
    assert isinstance(unit, RegistryRecord) and isinstance(same, RegistryRecord)
    assert unit.name == same.name == "COMMUNE DE DIJON"


async def test_behind_the_gate_a_bearer_token_is_refused(tmp_path: Path) -> None:
    """Why the opt-out exists: the gate asks for a client certificate first."""
    tls = shared_tls(tmp_path / "tls", [])
    app = create_registries_sandbox(RegistriesConfig(companies=10))
    async with (
        running_sandbox(app, tls=tls) as running,
        httpx.AsyncClient(verify=str(tls.material.ca_file), timeout=5) as http,
    ):
        with pytest.raises(httpx.HTTPError):
            response = await http.get(
                f"{running.url}/v3/insee/sirene/unites_legales/212102313",
                params={"context": "Relais", "recipient": RECIPIENT, "object": "test"},
                headers=entreprise_headers(DEFAULT_ENTREPRISE_TOKEN),
            )
            response.raise_for_status()
