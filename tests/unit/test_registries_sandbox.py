"""The sandbox registries, driven through the real connectors over an ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.registries.annuaire import AnnuaireConnector
from connectors.registries.entreprise import CallContext, EntrepriseConnector, entreprise_headers
from connectors.registries.errors import (
    RegistryNotDiffusibleError,
    RegistryQuotaError,
    RegistryUnavailableError,
)
from connectors.registries.http import build_registry_client
from connectors.registries.models import Diffusion, NotFound, RegistryRecord
from connectors.registries.sirene import SireneConnector, sirene_headers
from relais.errors import PartnerAuthError, PartnerPermanentError
from relais.identifiers import LA_POSTE_SIREN, is_luhn_valid, is_valid_siren, is_valid_siret
from sandbox.common.clock import AdjustableClock
from sandbox.registries.app import create_registries_sandbox
from sandbox.registries.config import (
    DEFAULT_ENTREPRISE_TOKEN,
    DEFAULT_SIRENE_KEY,
    RegistriesConfig,
)
from sandbox.registries.data import generate
from sandbox.registries.quota import QuotaRule
from sandbox.registries.state import RegistriesState

CALL = CallContext(context="test", recipient="21210231300013", object="unit test")


class Sandbox:
    def __init__(self, config: RegistriesConfig) -> None:
        self.clock = AdjustableClock()
        self.app = create_registries_sandbox(config, clock=self.clock)
        self.state: RegistriesState = self.app.state.registries
        self.transport = httpx.ASGITransport(app=self.app)

    def client(self, base: str = "", headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return build_registry_client(
            f"http://sandbox{base}", headers=headers, transport=self.transport
        )

    def sirene(self, key: str = DEFAULT_SIRENE_KEY) -> httpx.AsyncClient:
        return self.client("/api-sirene/3.11", sirene_headers(key))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    yield Sandbox(RegistriesConfig(companies=120))


def test_generated_numbers_are_valid_and_cover_every_case() -> None:
    data = generate(seed=7, companies=200)
    assert all(is_valid_siren(s) for s in data.units)
    assert all(is_valid_siret(s) for s in data.establishments)
    samples = data.samples()
    for kind in (
        "active_units",
        "ceased_units",
        "partly_diffusible_units",
        "non_diffusible_units",
        "leading_zero_units",
        "closed_establishments",
    ):
        assert samples[kind], kind
    exceptions = samples["la_poste_exception_sirets"]
    assert exceptions and all(not is_luhn_valid(s) for s in exceptions)
    assert "35600000000048" in data.establishments
    assert generate(seed=7, companies=200).units.keys() == data.units.keys()


async def test_sirene_answers_read_by_the_connector(sandbox: Sandbox) -> None:
    samples = sandbox.state.data.samples()
    async with sandbox.sirene() as client:
        sirene = SireneConnector(client)
        dijon = await sirene.lookup("212102313")
        assert isinstance(dijon, RegistryRecord)
        assert (dijon.name, dijon.legal_category, dijon.naf) == (
            "COMMUNE DE DIJON",
            "7210",
            "84.11Z",
        )
        assert dijon.head_office_siret is not None
        seat = await sirene.lookup(dijon.head_office_siret)
        assert isinstance(seat, RegistryRecord) and seat.address is not None
        assert (seat.address.commune, seat.address.commune_code) == ("DIJON", "21231")
        closed = await sirene.lookup(samples["closed_establishments"][0])
        assert isinstance(closed, RegistryRecord) and not closed.active and closed.closed_on
        ceased = await sirene.lookup(samples["ceased_units"][0])
        assert isinstance(ceased, RegistryRecord) and not ceased.active
        partial = await sirene.lookup(samples["partly_diffusible_units"][0])
        assert isinstance(partial, RegistryRecord) and partial.diffusion is Diffusion.PARTIAL
        assert partial.name is None and "nomUniteLegale" in partial.masked
        zero = await sirene.lookup(samples["leading_zero_units"][0])
        assert isinstance(zero, RegistryRecord) and zero.siren.startswith("00")
        la_poste = await sirene.lookup(samples["la_poste_exception_sirets"][0])
        assert isinstance(la_poste, RegistryRecord) and la_poste.siren == LA_POSTE_SIREN
        assert isinstance(await sirene.lookup("000000018"), NotFound)
        with pytest.raises(RegistryNotDiffusibleError):
            await sirene.lookup(samples["non_diffusible_units"][0])
    async with sandbox.sirene("wrong-key") as client:
        with pytest.raises(PartnerAuthError):
            await SireneConnector(client).lookup("212102313")


async def test_sirene_quota_on_a_scaled_down_window(sandbox: Sandbox) -> None:
    sandbox.state.set_rule("sirene", QuotaRule(3, 10.0))
    async with sandbox.sirene() as client:
        sirene = SireneConnector(client)
        for _ in range(3):
            await sirene.lookup("212102313")
        with pytest.raises(RegistryQuotaError) as caught:
            await sirene.lookup("212102313")
        assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 10
        stats = sandbox.state.stats()["registries"]["sirene"]
        assert (stats["in_rolling_window"], stats["quota_refused"]) == (3, 1)
        sandbox.clock.advance(10.5)
        await sirene.lookup("212102313")
    stats = sandbox.state.stats()["registries"]["sirene"]
    assert stats["in_rolling_window"] == 1
    assert stats["max_in_rolling_window"] == 3
    assert stats["numbers_asked_more_than_once"] == 1


async def test_quota_is_per_key_and_configurable_over_http(sandbox: Sandbox) -> None:
    async with sandbox.client() as control:
        answer = await control.post(
            "/sandbox/quota", json={"sirene": {"limit": 1, "window_seconds": 5}}
        )
        assert answer.json()["sirene"] == {"limit": 1, "window_seconds": 5.0}
        bad = await control.post("/sandbox/quota", json={"sirene": {"limit": -1}})
        assert bad.status_code == 400
    sandbox.state.config = RegistriesConfig(sirene_keys=("a", "b"))
    async with sandbox.sirene("a") as first, sandbox.sirene("b") as second:
        await SireneConnector(first).lookup("212102313")
        await SireneConnector(second).lookup("212102313")  # another key, its own quota
        with pytest.raises(RegistryQuotaError):
            await SireneConnector(first).lookup("212102313")


async def test_entreprise_requires_its_parameters_and_token(sandbox: Sandbox) -> None:
    headers = entreprise_headers(DEFAULT_ENTREPRISE_TOKEN)
    samples = sandbox.state.data.samples()
    async with sandbox.client(headers=headers) as client:
        connector = EntrepriseConnector(client, CALL)
        unit = await connector.lookup("217100072")
        assert isinstance(unit, RegistryRecord) and unit.name == "COMMUNE DE MACON"
        closed = await connector.lookup(samples["closed_establishments"][0])
        assert isinstance(closed, RegistryRecord) and not closed.active
        partial = await connector.lookup(samples["partly_diffusible_units"][0])
        assert isinstance(partial, RegistryRecord) and partial.diffusion is Diffusion.PARTIAL
        with pytest.raises(RegistryNotDiffusibleError):
            await connector.lookup(samples["non_diffusible_units"][0])
        missing = await client.get(
            "/v3/insee/sirene/unites_legales/217100072", params={"context": "x", "object": "y"}
        )
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["source"] == {"parameter": "recipient"}
    async with sandbox.client(headers=entreprise_headers("nope")) as client:
        with pytest.raises(PartnerAuthError):
            await EntrepriseConnector(client, CALL).lookup("217100072")


async def test_annuaire_and_fault_knobs(sandbox: Sandbox) -> None:
    async with sandbox.client() as client:
        annuaire = AnnuaireConnector(client)
        (mairie,) = await annuaire.by_commune("21231")
        assert mairie.pivot == ("mairie",) and mairie.siret is not None
        found = await annuaire.by_siret(mairie.siret)
        assert not isinstance(found, NotFound) and found.commune_code == "21231"
        bad = await client.get(
            "/api/explore/v2.1/catalog/datasets/api-lannuaire-administration/records",
            params={"where": "nom like 'x' or 1=1"},
        )
        assert bad.status_code == 400 and bad.json()["error_code"] == "ODSQLError"
        await client.post("/sandbox/faults", json={"error_rate": 1.0, "error_status": 503})
        with pytest.raises(RegistryUnavailableError):
            await annuaire.by_commune("21231")
        await client.post(
            "/sandbox/faults", json={"error_rate": 1.0, "error_status": 429, "retry_after": 7}
        )
        with pytest.raises(RegistryQuotaError) as caught:
            await annuaire.by_commune("21231")
        assert caught.value.retry_after == 7.0
        await client.post("/sandbox/reset")
        numbers = (await client.get("/sandbox/numbers")).json()
        assert "212102313" in numbers["communes"]
    with pytest.raises(PartnerPermanentError):
        async with sandbox.client() as client:
            await AnnuaireConnector(client)._records("nom like 'x'", "bad query")
