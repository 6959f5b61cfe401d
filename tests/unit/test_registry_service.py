"""The look-up service against the sandbox registries, on one fake clock shared by both."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from agents.registry.service import LookupPendingError, LookupService, Quota
from connectors.registries.http import build_registry_client
from connectors.registries.sirene import SireneConnector, sirene_headers
from relais.errors import PartnerTransientError
from relais.identifiers import luhn_check_digit
from relais.registry.breaker import CircuitBreaker
from relais.registry.cache import CacheEntry, Outcome, RegistryCache
from sandbox.common.clock import AdjustableClock
from sandbox.registries.app import create_registries_sandbox
from sandbox.registries.config import DEFAULT_SIRENE_KEY, RegistriesConfig
from sandbox.registries.quota import QuotaRule
from sandbox.registries.state import RegistriesState


class Rig:
    def __init__(self, sandbox_quota: QuotaRule, service_quota: Quota, **service: object) -> None:
        self.clock = AdjustableClock()
        app = create_registries_sandbox(
            RegistriesConfig(companies=300, sirene_quota=sandbox_quota), clock=self.clock
        )
        self.state: RegistriesState = app.state.registries
        self.client = build_registry_client(
            "http://sandbox/api-sirene/3.11",
            headers=sirene_headers(DEFAULT_SIRENE_KEY),
            transport=httpx.ASGITransport(app=app),
        )
        self.published: list[str] = []

        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds)
            await asyncio.sleep(0)

        async def publish(entry: CacheEntry) -> None:
            self.published.append(entry.key)

        self.service = LookupService(
            {"sirene": SireneConnector(self.client)},
            {"sirene": service_quota},
            RegistryCache(),
            clock=lambda: self.clock().timestamp(),
            sleep=sleep,
            publish=publish,
            **service,  # type: ignore[arg-type]
        )

    def numbers(self, count: int) -> list[str]:
        data = self.state.data
        known = sorted(data.units)[: count // 2] + sorted(data.establishments)[: count // 3]
        unknown: list[str] = []
        rng = random.Random(3)
        while len(known) + len(unknown) < count:
            payload = f"{rng.randint(10_000_000, 29_999_999)}"
            siren = payload + luhn_check_digit(payload)
            if siren not in data.units and siren not in unknown:
                unknown.append(siren)
        return known + unknown


async def test_a_burst_asks_each_number_once_within_the_rolling_quota() -> None:
    rig = Rig(QuotaRule(30, 60.0), Quota(30, 60.0), max_wait=3600.0)
    numbers = rig.numbers(300)
    asks = [numbers[i % 300] for i in range(2000)]
    random.Random(5).shuffle(asks)
    answers = await asyncio.gather(
        *(rig.service.lookup("sirene", n) for n in asks), return_exceptions=True
    )
    assert all(not isinstance(a, BaseException) for a in answers)
    stats = rig.state.stats()["registries"]["sirene"]
    assert stats["max_in_rolling_window"] <= 30
    assert stats["quota_refused"] == 0
    assert stats["distinct_numbers"] == 300
    assert stats["numbers_asked_more_than_once"] == 0
    assert rig.service.calls == 300 and len(rig.published) == 300
    outcomes = {a.entry.outcome for a in answers if not isinstance(a, BaseException)}
    assert outcomes == {Outcome.FOUND, Outcome.NOT_FOUND, Outcome.NOT_DIFFUSIBLE}
    again = await rig.service.lookup("sirene", numbers[-1])  # a not-found, cached
    assert again.from_cache and again.entry.outcome is Outcome.NOT_FOUND
    await rig.client.aclose()


async def test_numbers_beyond_the_wait_limit_are_pending_with_their_wait() -> None:
    rig = Rig(QuotaRule(30, 60.0), Quota(30, 60.0), max_wait=60.0)
    answers = await asyncio.gather(
        *(rig.service.lookup("sirene", n) for n in rig.numbers(60)), return_exceptions=True
    )
    pending = [a for a in answers if isinstance(a, LookupPendingError)]
    answered = [a for a in answers if not isinstance(a, BaseException)]
    assert len(pending) + len(answered) == 60
    assert 25 <= len(answered) <= 30 and pending
    assert all(p.retry_after is not None and p.retry_after > 0 for p in pending)
    await rig.client.aclose()


async def test_a_stricter_registry_answers_429_and_the_service_waits_retry_after() -> None:
    rig = Rig(QuotaRule(10, 60.0), Quota(30, 60.0))
    numbers = rig.numbers(40)
    answers = await asyncio.gather(*(rig.service.lookup("sirene", n) for n in numbers))
    assert len(answers) == 40
    stats = rig.state.stats()["registries"]["sirene"]
    assert stats["quota_refused"] >= 1
    assert stats["max_in_rolling_window"] <= 10
    assert stats["numbers_asked_more_than_once"] == 0
    await rig.client.aclose()


async def test_the_breaker_opens_on_an_unavailable_registry_and_lookups_turn_pending() -> None:
    rig = Rig(
        QuotaRule(30, 60.0),
        Quota(30, 60.0),
        max_wait=5.0,
        breaker=lambda: CircuitBreaker(threshold=3, open_seconds=30.0),
    )
    rig.state.faults = rig.state.faults.updated({"error_rate": 1.0, "error_status": 503})
    numbers = rig.numbers(6)
    for number in numbers[:3]:
        with pytest.raises(PartnerTransientError):
            await rig.service.lookup("sirene", number)
    with pytest.raises(LookupPendingError) as caught:
        await rig.service.lookup("sirene", numbers[3])
    assert caught.value.retry_after is not None and caught.value.retry_after > 20
    assert rig.service.calls == 3  # the open circuit made no call
    rig.state.faults = rig.state.faults.updated({"error_rate": 0.0})
    rig.clock.advance(31)
    answer = await rig.service.lookup("sirene", numbers[4])  # the probe closes it
    assert not answer.from_cache
    await rig.client.aclose()


async def test_invalid_numbers_never_reach_a_registry() -> None:
    rig = Rig(QuotaRule(30, 60.0), Quota(30, 60.0))
    with pytest.raises(ValueError):
        await rig.service.lookup("sirene", "212102314")
    with pytest.raises(ValueError):
        await rig.service.lookup("bodacc", "212102313")
    answer = await rig.service.lookup("sirene", "212 102 313")
    assert answer.entry.payload["name"] == "COMMUNE DE DIJON"
    assert answer.entry.identifier == "212102313"
    assert rig.service.calls == 1
    await rig.client.aclose()
