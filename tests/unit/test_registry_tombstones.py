"""Tombstones on ``relais.registry.cache``: the owner of a registry sweeps its expired
entries (so compaction reclaims them), every view drops a key on its tombstone, and
``relais registry forget`` tombstones a number in every look-up registry."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from agents.registry import ask
from agents.registry.service import SWEEP_EVERY, LookupService, Quota
from agents.registry.views import RegistryCacheView
from connectors.registries.models import NotFound, Registry
from relais.registry.cache import HOUR, Outcome, RegistryCache, entry_record, make_entry
from relais.wire.avro_codec import AvroCodec
from topics.registry import REGISTRY_CACHE

SIRENE_OLD = make_entry("sirene", "212102313", Outcome.NOT_FOUND, 0.0)  # expires at 1 h
SIRENE_NEW = make_entry("sirene", "217100072", Outcome.FOUND, 3 * HOUR, active=True)
ENTREPRISE_OLD = make_entry("entreprise", "212102313", Outcome.NOT_FOUND, 0.0)


class Nobody:
    async def lookup(self, identifier: str) -> NotFound:
        return NotFound(Registry.SIRENE, identifier, "unknown")


def service_with(cache: RegistryCache, now: list[float],
                 published: list[list[str]], fail: bool = False) -> LookupService:
    async def publish_tombstones(keys: list[str]) -> None:
        if fail:
            raise ConnectionError("broker away")
        published.append(keys)

    quotas = {"sirene": Quota(30, 60.0), "entreprise": Quota(30, 60.0)}
    return LookupService({"sirene": Nobody(), "entreprise": Nobody()}, quotas, cache,
                         clock=lambda: now[0], publish_tombstones=publish_tombstones)


def filled() -> RegistryCache:
    cache = RegistryCache()
    for entry in (SIRENE_OLD, SIRENE_NEW, ENTREPRISE_OLD):
        cache.put(entry)
    return cache


async def test_the_owner_tombstones_the_expired_entries_of_its_registries_only() -> None:
    cache, now = filled(), [4 * HOUR]
    published: list[list[str]] = []
    service = service_with(cache, now, published)
    assert await service.sweep(force=True) == 0  # owns nothing yet
    service.assigned({"sirene"})
    assert await service.sweep(force=True) == 1
    assert published == [[SIRENE_OLD.key]]
    assert cache.expired(now[0]) == [ENTREPRISE_OLD.key]  # not its registry: left alone
    assert cache.get("sirene", "217100072", now[0]) == SIRENE_NEW
    # not again before SWEEP_EVERY; then the next expired ones
    now[0] = 3 * HOUR + 24 * HOUR + 1  # SIRENE_NEW (active: 24 h) expired now
    assert await service.sweep() == 1 and published[-1] == [SIRENE_NEW.key]
    cache.put(make_entry("sirene", "000000018", Outcome.NOT_FOUND, 0.0))
    now[0] += SWEEP_EVERY - 1
    assert await service.sweep() == 0
    now[0] += 1
    assert await service.sweep() == 1 and len(cache) == 1  # only entreprise's is left


async def test_one_sweep_writes_a_bounded_number_of_tombstones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.registry import service as service_module

    monkeypatch.setattr(service_module, "SWEEP_MAX_KEYS", 2)
    cache, now = RegistryCache(), [4 * HOUR]
    for i in range(5):
        cache.put(make_entry("sirene", f"00000001{i}", Outcome.NOT_FOUND, 0.0))
    published: list[list[str]] = []
    service = service_with(cache, now, published)
    service.assigned({"sirene"})
    assert [await service.sweep(force=True) for _ in range(4)] == [2, 2, 1, 0]
    assert sum(len(keys) for keys in published) == 5 and len(cache) == 0


async def test_a_sweep_that_cannot_publish_keeps_the_entries_for_the_next_one() -> None:
    cache, now = filled(), [4 * HOUR]
    published: list[list[str]] = []
    service = service_with(cache, now, published, fail=True)
    service.assigned({"sirene", "entreprise"})
    assert await service.sweep(force=True) == 0
    assert sorted(cache.expired(now[0])) == sorted([SIRENE_OLD.key, ENTREPRISE_OLD.key])


async def test_the_look_up_stage_sweeps_now_and_then() -> None:
    from agents.registry.lookup import LookupDeps, handle_lookup
    from tests.unit.acts_fakes import SIREN, flow_of, record_of
    from topics.registry import REGISTRY_LOOKUPS

    codec = AvroCodec()
    cache, now = filled(), [4 * HOUR]
    published: list[list[str]] = []
    service = service_with(cache, now, published)
    service.assigned({"sirene"})
    value = {"request_id": "req-1", "member_siren": SIREN, "identifier": "217100072",
             "registry": "SIRENE", "purpose": None, "contract_submission_id": None}
    record = record_of(codec, "RegistryLookup", value, REGISTRY_LOOKUPS.name, flow_of("req-1"))
    await handle_lookup(record, LookupDeps(codec=codec, service=service))
    assert published == [[SIRENE_OLD.key]]
    await handle_lookup(record, LookupDeps(codec=codec, service=service))
    assert len(published) == 1  # not twice within SWEEP_EVERY


def test_a_view_drops_a_key_on_its_tombstone() -> None:
    codec = AvroCodec()
    view = RegistryCacheView("unused:9092", codec)
    raw = codec.encode("RegistryCacheEntry", entry_record(SIRENE_NEW))
    view.view.apply(SIRENE_NEW.key.encode(), raw)
    assert view.cache.get("sirene", "217100072", 3 * HOUR + 1) is not None
    view.view.apply(SIRENE_NEW.key.encode(), None)
    assert view.cache.get("sirene", "217100072", 3 * HOUR + 1) is None and len(view.cache) == 0


def test_forget_names_the_number_in_every_look_up_registry() -> None:
    assert ask.forget_keys("217 100 072") == ["sirene:217100072", "entreprise:217100072"]
    with pytest.raises(ValueError, match="Luhn"):
        ask.forget_keys("217100073")


async def test_forget_publishes_one_tombstone_per_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, Any, Any]] = []

    class Publisher:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

        async def publish_raw(self, topic: str, *, key: str, value: bytes | None,
                              headers: Any) -> None:
            sent.append((topic, key, value))

    monkeypatch.setattr(ask, "Publisher", Publisher)
    keys = await ask.forget_number("unused:9092", AvroCodec(), "00442694600010")
    assert sent == [(REGISTRY_CACHE.name, key, None) for key in keys]
    assert keys == ["sirene:00442694600010", "entreprise:00442694600010"]


def test_relais_registry_forget(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.cli import registry_cmd
    from hub.cli.main import app

    async def fake_forget(bootstrap: str, codec: AvroCodec, identifier: str) -> list[str]:
        return ask.forget_keys(identifier)  # the same checks, no Kafka

    monkeypatch.setattr(registry_cmd, "forget_number", fake_forget)
    monkeypatch.setattr("hub.cli.common.configure_logging", lambda *args, **kwargs: None)
    runner = CliRunner()
    done = runner.invoke(app, ["registry", "forget", "217100072"])
    assert done.exit_code == 0, done.output
    assert "sirene:217100072, entreprise:217100072" in done.output
    refused = runner.invoke(app, ["registry", "forget", "217100073"])
    assert refused.exit_code == 1 and "Luhn" in refused.output
