"""registry-lookup on the sandbox: answered, pending (parked on a delay tier), failed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agents.registry.lookup import MAX_WAITS, LookupDeps, handle_lookup
from agents.registry.service import LookupPendingError, LookupService, Quota
from connectors.registries.http import build_registry_client
from connectors.registries.sirene import SireneConnector, sirene_headers
from relais.registry.cache import RegistryCache
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from sandbox.common.clock import AdjustableClock
from sandbox.registries.app import create_registries_sandbox
from sandbox.registries.config import DEFAULT_SIRENE_KEY, RegistriesConfig
from tests.unit.acts_fakes import SIREN, flow_of, notifications, record_of
from topics.delays import TIERS
from topics.registry import REGISTRY_LOOKUPS


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def deps_on_sandbox(codec: AvroCodec, clock: AdjustableClock) -> tuple[LookupDeps, Any]:
    app = create_registries_sandbox(RegistriesConfig(companies=20), clock=clock)
    client = build_registry_client(
        "http://sandbox/api-sirene/3.11",
        headers=sirene_headers(DEFAULT_SIRENE_KEY),
        transport=httpx.ASGITransport(app=app),
    )

    async def no_sleep(seconds: float) -> None:
        clock.advance(seconds)

    service = LookupService(
        {"sirene": SireneConnector(client)},
        {"sirene": Quota(3, 60.0)},
        RegistryCache(),
        clock=lambda: clock().timestamp(),
        sleep=no_sleep,
        max_wait=5.0,
    )
    return LookupDeps(codec=codec, service=service), client


def record(codec: AvroCodec, identifier: str, attempt: int = 0) -> Any:
    value = {
        "request_id": "req-1",
        "member_siren": SIREN,
        "identifier": identifier,
        "registry": "SIRENE",
        "purpose": None,
    }
    extra = {h.ATTEMPT: str(attempt)} if attempt else {}
    return record_of(
        codec, "RegistryLookup", value, REGISTRY_LOOKUPS.name, flow_of("req-1"), **extra
    )


async def test_answered_then_pending_when_the_quota_is_spent(codec: AvroCodec) -> None:
    deps, client = deps_on_sandbox(codec, AdjustableClock())
    [note] = notifications(codec, await handle_lookup(record(codec, "212102313"), deps))
    assert (note["state"], note["details"]["from_cache"]) == ("answered", "false")
    assert note["details"]["name"] == "COMMUNE DE DIJON"
    assert note["details"]["legal_category"] == "7210"
    [again] = notifications(codec, await handle_lookup(record(codec, "212102313"), deps))
    assert again["details"]["from_cache"] == "true"
    await handle_lookup(record(codec, "217100072"), deps)  # the bucket is now empty
    outputs = await handle_lookup(record(codec, "000000018"), deps)
    [pending] = notifications(codec, outputs)
    assert pending["state"] == "pending" and int(pending["details"]["retry_after"]) > 5
    [parked] = [o for o in outputs if o.topic in {t.topic.name for t in TIERS}]
    assert parked.key == record(codec, "000000018").key
    assert h.get(parked.headers, h.DELAY_TARGET) == REGISTRY_LOOKUPS.name
    assert h.get(parked.headers, h.ATTEMPT) == "1"
    with pytest.raises(LookupPendingError):  # parked too often: the failure router's turn
        await handle_lookup(record(codec, "000000018", attempt=MAX_WAITS), deps)
    await client.aclose()
