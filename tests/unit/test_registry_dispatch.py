"""registry-dispatch on fakes: bad numbers refused, cached answers at once, misses forwarded."""

from __future__ import annotations

from typing import Any

import pytest

from agents.registry.dispatch import DispatchDeps, handle_requested
from relais.identifiers import make_siret
from relais.registry.cache import Outcome, RegistryCache, make_entry
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import SIREN, flow_events, flow_of, notifications, record_of
from topics.registry import REGISTRY_LOOKUPS, REGISTRY_REQUESTED


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def lookup(identifier: str, registry: str = "SIRENE", purpose: str | None = None) -> dict[str, Any]:
    return {
        "request_id": "req-1",
        "member_siren": SIREN,
        "identifier": identifier,
        "registry": registry,
        "purpose": purpose,
    }


async def dispatch(
    codec: AvroCodec, value: dict[str, Any], cache: RegistryCache | None = None
) -> list[Any]:
    record = record_of(codec, "RegistryLookup", value, REGISTRY_REQUESTED.name, flow_of("req-1"))
    deps = DispatchDeps(codec=codec, cache=cache or RegistryCache(), clock=lambda: 100.0)
    return await handle_requested(record, deps)


async def test_a_bad_check_digit_is_rejected_without_asking(codec: AvroCodec) -> None:
    outputs = await dispatch(codec, lookup("212 102 314"))
    [note] = notifications(codec, outputs)
    assert (note["kind"], note["state"], note["flow_type"]) == ("REJECTED", "rejected", "registry")
    assert [(r["field"], r["code"]) for r in note["reasons"]] == [("identifier", "checksum")]
    assert not [o for o in outputs if o.topic == REGISTRY_LOOKUPS.name]
    [note] = notifications(codec, await dispatch(codec, lookup("12345")))
    assert note["reasons"][0]["code"] == "format"


async def test_api_entreprise_needs_a_purpose(codec: AvroCodec) -> None:
    [note] = notifications(codec, await dispatch(codec, lookup("212102313", "ENTREPRISE")))
    assert [r["field"] for r in note["reasons"]] == ["purpose"]


async def test_a_cached_answer_is_sent_at_once(codec: AvroCodec) -> None:
    cache = RegistryCache()
    siret = make_siret("212102313", "0001")
    cache.put(
        make_entry(
            "sirene",
            siret,
            Outcome.FOUND,
            50.0,
            active=False,
            payload={"name": "COMMUNE DE DIJON", "closed_on": "2021-09-30"},
        )
    )
    outputs = await dispatch(codec, lookup(siret[:3] + " " + siret[3:]), cache)
    [note] = notifications(codec, outputs)
    assert (note["state"], note["submission_id"], note["partner_ref"]) == (
        "answered",
        "req-1",
        siret,
    )
    assert note["details"]["from_cache"] == "true"
    assert note["details"]["outcome"] == "found"
    assert "closed since 2021-09-30" in note["message"]
    assert [e["state"] for e in flow_events(codec, outputs)] == ["answered"]


async def test_a_miss_goes_to_its_registry_partition(codec: AvroCodec) -> None:
    cache = RegistryCache()
    cache.put(make_entry("sirene", "212102313", Outcome.NOT_FOUND, 0.0))  # expired at 3600
    cache.put(make_entry("sirene", "217100072", Outcome.FOUND, 0.0, active=True))
    [out] = await dispatch(codec, lookup("217100072", "ANNUAIRE"), cache)  # other registry
    assert (out.topic, out.key) == (REGISTRY_LOOKUPS.name, b"annuaire")
    [note] = notifications(codec, await dispatch(codec, lookup("212102313"), cache))
    assert note["details"]["outcome"] == "not_found"  # negative cache, still fresh at 100 s
