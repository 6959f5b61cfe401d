"""The registry flow as the hub runs it: declared stages, key scheme, settings, operator
look-ups (no member) and contractor warnings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2

from agents.registry.answers import CONTRACTOR_CLOSED, CONTRACTOR_UNKNOWN
from agents.registry.flow import REGISTRY
from agents.registry.lookup import LookupDeps, handle_lookup
from agents.registry.service import LookupService, Quota
from connectors.registries.configured import configured_registries
from connectors.registries.http import build_registry_client
from connectors.registries.sirene import SireneConnector, sirene_headers
from hub.flows import FLOWS
from ops.members import RegistryIdentity
from relais.errors import ConfigurationError
from relais.flows.kit import check_declarations, stages_of
from relais.registry.cache import RegistryCache
from relais.settings import Settings
from relais.stages.records import FakeRecord
from relais.wire.avro_codec import AvroCodec
from sandbox.common.clock import AdjustableClock
from sandbox.registries.app import create_registries_sandbox
from sandbox.registries.config import DEFAULT_SIRENE_KEY, RegistriesConfig
from tests.unit.acts_fakes import flow_of, notifications, record_of
from topics.registry import REGISTRY_LOOKUPS


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def test_the_hub_runs_both_registry_stages() -> None:
    assert REGISTRY in FLOWS
    check_declarations(FLOWS)
    stages = {s.name: s for s in stages_of(FLOWS)}
    assert stages["registry-lookup"].input is REGISTRY_LOOKUPS
    assert stages["registry-lookup"].partner == "registries"
    assert stages["registry-dispatch"].partner is None  # cache answers never pause


def test_each_look_up_registry_has_a_partition_of_its_own() -> None:
    def partition(key: str) -> int:  # Kafka's default partitioner for a keyed record
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % REGISTRY_LOOKUPS.partitions

    assert REGISTRY_LOOKUPS.partitions == 3
    assert partition("sirene") != partition("entreprise")


def test_settings_configure_the_registries_from_named_secrets() -> None:
    assert configured_registries(Settings()).connectors == {}
    settings = Settings(registry_sirene_url="https://sirene.test/3.11",
                        registry_sirene_key_env="TEST_SIRENE_KEY", registry_sirene_quota=12,
                        registry_quota_window_seconds=20.0)
    with pytest.raises(ConfigurationError, match="TEST_SIRENE_KEY"):
        configured_registries(settings, environ={})
    configured = configured_registries(settings, environ={"TEST_SIRENE_KEY": "s3cr3t-k3y"})
    assert set(configured.connectors) == {"sirene"}
    assert (configured.quotas["sirene"].limit, configured.quotas["sirene"].window_seconds) \
        == (12, 20.0)
    assert configured.clients[0].headers["X-INSEE-Api-Key-Integration"] == "s3cr3t-k3y"
    assert "s3cr3t-k3y" not in str(settings)  # only the variable's name is a setting


def _deps(codec: AvroCodec, connectors: bool = True) -> tuple[LookupDeps, Any, Any]:
    clock = AdjustableClock()
    app = create_registries_sandbox(RegistriesConfig(companies=20), clock=clock)
    client = build_registry_client("http://sandbox/api-sirene/3.11",
                                   headers=sirene_headers(DEFAULT_SIRENE_KEY),
                                   transport=httpx.ASGITransport(app=app))

    async def no_sleep(seconds: float) -> None:
        clock.advance(seconds)

    service = LookupService({"sirene": SireneConnector(client)} if connectors else {},
                            {"sirene": Quota(30, 60.0)}, RegistryCache(),
                            clock=lambda: clock().timestamp(), sleep=no_sleep)
    return LookupDeps(codec=codec, service=service), client, app.state.registries


def _lookup(codec: AvroCodec, identifier: str, *, member: str = "212102313",
            contract: str | None = None) -> Any:
    value = {"request_id": "req-9", "member_siren": member, "identifier": identifier,
             "registry": "SIRENE", "purpose": None, "contract_submission_id": contract}
    record = record_of(codec, "RegistryLookup", value, REGISTRY_LOOKUPS.name, flow_of("req-9"))
    if member:
        return record
    return FakeRecord(topic=record.topic, value=record.value, key=b"sirene")  # no member


async def test_an_operator_look_up_fills_the_cache_and_notifies_nobody(
    codec: AvroCodec,
) -> None:
    deps, client, state = _deps(codec)
    assert await handle_lookup(_lookup(codec, "217100072", member=""), deps) == []
    entry = deps.service.cache.get("sirene", "217100072", deps.service.clock())
    assert entry is not None and entry.payload["name"] == "COMMUNE DE MACON"
    assert state.numbers["sirene"]["217100072"] == 1
    await client.aclose()


async def test_an_unconfigured_registry_is_refused_with_a_reason(codec: AvroCodec) -> None:
    deps, client, _ = _deps(codec, connectors=False)
    [note] = notifications(codec, await handle_lookup(_lookup(codec, "212102313"), deps))
    assert note["state"] == "rejected"
    assert note["reasons"][0]["code"] == "not_configured"
    await client.aclose()


async def test_a_closed_contractor_is_a_warning_not_a_refusal(codec: AvroCodec) -> None:
    deps, client, state = _deps(codec)
    closed = state.data.samples()["closed_establishments"][0]
    outputs = await handle_lookup(_lookup(codec, closed, contract="marche-7"), deps)
    [note] = notifications(codec, outputs)
    assert note["state"] == "answered" and note["kind"] == "STATE_CHANGED"
    assert note["details"]["warning"] == CONTRACTOR_CLOSED
    assert note["details"]["acte_submission_id"] == "marche-7"
    assert note["message"].startswith("warning: contractor of acte marche-7")
    opened = state.data.samples()["open_establishments"][0]
    [fine] = notifications(codec, await handle_lookup(
        _lookup(codec, opened, contract="marche-7"), deps))
    assert "warning" not in fine["details"]
    await client.aclose()


async def test_an_unknown_contractor_is_flagged_too(codec: AvroCodec) -> None:
    deps, client, state = _deps(codec)
    known = set(state.data.establishments)
    unknown = next(s for s in ("21210231300013", "21210231300021", "21210231300039")
                   if s not in known)
    [note] = notifications(codec, await handle_lookup(
        _lookup(codec, unknown, contract="marche-8"), deps))
    assert note["details"]["warning"] == CONTRACTOR_UNKNOWN
    await client.aclose()


@pytest.mark.parametrize(("commune_code", "department"),
                         [("21231", "021"), ("2A004", "02A"), ("97411", "974"), (None, None)])
def test_a_members_department_comes_from_its_communes_code(
    commune_code: str | None, department: str | None
) -> None:
    identity = RegistryIdentity("COMMUNE DE DIJON", "7210", "DIJON", commune_code, True)
    assert identity.department == department


async def test_a_members_look_up_passes_the_ingress_to_the_dispatch(codec: AvroCodec) -> None:
    """A RegistryLookup names its id ``request_id``: the ingress takes it as the
    submission id (flow id, answer's submission_id) and forwards the look-up."""
    from agents.ingress.handler import IngressCounters, IngressDeps, handle_submission
    from relais.api.auth import hash_token
    from relais.flows.ids import flow_id_for
    from relais.flows.kit import machines_of, routes_of
    from relais.members.model import Member
    from topics import member as member_topics
    from topics.registry import REGISTRY_REQUESTED

    siren = "212102313"

    class Members:
        def get(self, wanted: str) -> Member | None:
            return Member(siren, "Dijon", "021", hash_token("t")) if wanted == siren else None

    class NoBlobs:
        async def stat(self, sha256: str) -> int | None:
            return None

        async def owned_by(self, sha256: str, member: str) -> bool:
            return False

    deps = IngressDeps(codec=codec, members=Members(), blobs=NoBlobs(),
                       max_submission_bytes=64 * 1024, counters=IngressCounters(),
                       routes=routes_of(FLOWS), machines=machines_of(FLOWS))
    value = codec.encode("RegistryLookup", {
        "request_id": "ask-1", "member_siren": siren, "identifier": "217100072",
        "registry": "SIRENE", "purpose": None, "contract_submission_id": None})
    record = FakeRecord(topic=member_topics.submissions(siren).name, value=value,
                        key=b"ask-1")
    outputs = await handle_submission(record, deps)
    [forwarded] = [o for o in outputs if o.topic == REGISTRY_REQUESTED.name]
    assert forwarded.key == siren.encode()
    notes = [codec.decode(o.value or b"").record for o in outputs
             if o.topic == member_topics.notifications(siren).name]
    assert [(n["state"], n["submission_id"], n["flow_id"]) for n in notes] == [
        ("received", "ask-1", flow_id_for(siren, "ask-1"))]


def test_the_operators_command_says_where_the_answer_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from agents.registry.ask import Asked, check_number
    from hub.cli import registry_cmd
    from hub.cli.main import app
    from relais.registry.cache import Outcome, make_entry

    entry = make_entry("sirene", "00442694600010", Outcome.FOUND, 1.0e9, active=False,
                       payload={"name": "THOMAS INFORMATIQUE SARL", "active": "false",
                                "closed_on": "2025-04-17", "commune": "DIJON"})
    answers = iter([Asked("00442694600010", entry, from_cache=True),
                    Asked("00442694600010", entry, from_cache=False),
                    Asked("00442694600010", None, from_cache=False)])

    async def fake_ask(bootstrap: str, codec: AvroCodec, identifier: str,
                       **kwargs: Any) -> Asked:
        _, reasons = check_number(identifier)  # as the real one, before any Kafka
        if reasons:
            raise ValueError("; ".join(r.message for r in reasons))
        return next(answers)

    monkeypatch.setattr(registry_cmd, "ask_registry", fake_ask)
    # the CLI configures logging onto the runner's stream, closed after each invoke
    monkeypatch.setattr("hub.cli.common.configure_logging", lambda *args, **kwargs: None)
    runner = CliRunner()
    cached = runner.invoke(app, ["registry", "lookup", "004 426 946 00010"])
    assert cached.exit_code == 0, cached.output
    assert "is closed since 2025-04-17 (from the cache)" in cached.output
    assert "commune" in cached.output and "DIJON" in cached.output
    fresh = runner.invoke(app, ["registry", "lookup", "00442694600010", "--json"])
    assert '"from_cache": "false"' in fresh.output
    pending = runner.invoke(app, ["registry", "lookup", "00442694600010", "--timeout", "1"])
    assert pending.exit_code == 2 and "pending" in pending.output
    refused = runner.invoke(app, ["registry", "lookup", "00442694600011"])
    assert refused.exit_code == 1 and "Luhn" in refused.output


async def test_look_ups_are_parked_until_their_numbers_slot(codec: AvroCodec) -> None:
    from agents.registry.lookup import parking_tier

    deps, client, state = _deps(codec)
    service = deps.service
    rate = service.gates["sirene"].bucket.rate
    numbers = sorted(state.data.units)[:4]
    plans = [service.plan("sirene", n, f"req-{i}", wait_limit=0.0)
             for i, n in enumerate(numbers)]
    assert plans[0] is None  # the first slot is now
    waits = [p.wait for p in plans[1:] if p is not None]
    assert waits == pytest.approx([1 / rate, 2 / rate, 3 / rate], rel=1e-3)  # at the rate
    assert all(p is not None and p.leader for p in plans[1:])
    again = service.plan("sirene", numbers[3], "req-other", wait_limit=0.0)
    assert again is not None and not again.leader  # same slot, another request
    assert again.wait == pytest.approx(3 / rate, rel=1e-3)
    await service.lookup("sirene", numbers[0])
    assert service.plan("sirene", numbers[0], "req-late", wait_limit=0.0) is None  # cached
    assert parking_tier(400, leader=True).label == "5m"  # back before its slot
    assert parking_tier(400, leader=False).label == "10m"  # back after it
    assert parking_tier(700, leader=False).label == "10m"  # never an hour for minutes
    await client.aclose()
