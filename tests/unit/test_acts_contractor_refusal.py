"""A member whose ``contractor_check`` is ``refuse``: its contracts are checked against the
worker's view of the registry cache (no call, no wait), refused for a closed or unknown
contractor, parked on the delay tiers until the cache holds every contractor, and refused
as unverified after the last parking."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agents.acts.contractors import (
    CHILD_EVENT,
    CONTRACTOR_WAITS,
    MAX_CONTRACTORS,
    contractor_request_id,
)
from agents.acts.deps import CONTRACTOR_WAIT_TIERS, ActsDeps
from agents.acts.flow import ACTS
from agents.acts.machines import BY_TYPE
from agents.acts.validation import handle_submitted
from agents.registry.flow import REGISTRY
from agents.registry.views import RegistryCacheView
from relais.flows.kit import HubContext
from relais.flows.outbound import Outbound
from relais.flows.progress import fold_history
from relais.identifiers import make_siret
from relais.registry.cache import Outcome, RegistryCache, make_entry
from relais.settings import Settings
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    PDF,
    SIREN,
    DictMembers,
    FakeJournal,
    FakeRecord,
    World,
    classification_xml,
    flow_events,
    flow_of,
    member,
    notifications,
    record_of,
    submission,
)
from topics.acts import ACTS_DELIVERY, ACTS_SUBMITTED
from topics.registry import REGISTRY_REQUESTED

OPEN = "21210231300013"
CLOSED = "00442694600010"
UNKNOWN = make_siret("212102313", "0002")
NOW = 1_800_000_000.0
CONTRACTS = b"""<actes:NatureActe actes:CodeNatureActe="4" actes:Libelle="Contrats"
    actes:TypeAbrege="CC"><actes:TypePJNatureActe actes:CodeTypePJ="99_CO"
    actes:Libelle="Autre"/></actes:NatureActe>
  </actes:NaturesActes>"""


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _cache(*, active: tuple[str, ...] = (), closed: tuple[str, ...] = (),
           unknown: tuple[str, ...] = ()) -> RegistryCache:
    cache = RegistryCache()
    for number in active:
        cache.put(make_entry("sirene", number, Outcome.FOUND, NOW, active=True,
                             payload={"name": "ACTIVE SARL"}))
    for number in closed:
        cache.put(make_entry("sirene", number, Outcome.FOUND, NOW, active=False,
                             payload={"name": "FERMEE SA", "closed_on": "2019-06-30"}))
    for number in unknown:
        cache.put(make_entry("sirene", number, Outcome.NOT_FOUND, NOW))
    return cache


def _deps(world: World, cache: RegistryCache | None, *, check: str = "refuse",
          configured: bool = True) -> ActsDeps:
    refusing = replace(member(), contractor_check=check)
    return world.deps(members=DictMembers(refusing), registry_cache=cache,
                      registry_configured=configured, clock=lambda: NOW)


def _record(world: World, sirets: list[str], *, nature: int = 4, waits: int = 0,
            **changes: Any) -> FakeRecord:
    document = world.blobs.add(PDF, "convention.pdf")
    acte = submission(document={"blob": document, "typology": None}, nature_code=nature,
                      contractor_sirets=sirets, **changes)
    extra = {CONTRACTOR_WAITS: str(waits)} if waits else {}
    world.keep_classification()
    snapshot = world.snapshots.get(SIREN)
    assert snapshot is not None
    world.snapshots.put_local(SIREN, {
        **snapshot,
        "xml": classification_xml().replace(b"</actes:NaturesActes>", CONTRACTS),
    })
    return record_of(world.codec, "ActeSubmission", acte, ACTS_SUBMITTED.name,
                     flow_of("sub-1"), **extra)


def _topics(outputs: list[Outbound]) -> list[str]:
    return [out.topic for out in outputs]


def _lookups(codec: AvroCodec, outputs: list[Outbound]) -> list[str]:
    return [codec.decode(o.value or b"").record["identifier"] for o in outputs
            if o.topic == REGISTRY_REQUESTED.name]


async def test_every_contractor_cached_and_active_goes_on(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [OPEN]),
                                     _deps(world, _cache(active=(OPEN,))))
    [note] = notifications(codec, outputs)
    assert note["state"] == "validated" and note["details"]["contractors_checked"] == "1"
    assert ACTS_DELIVERY.name in _topics(outputs)
    assert _lookups(codec, outputs) == []  # read from the cache, nothing to ask


async def test_a_cached_closed_contractor_refuses_the_acte(codec: AvroCodec) -> None:
    world = World(codec)
    cache = _cache(active=(OPEN,), closed=(CLOSED,))
    outputs = await handle_submitted(_record(world, [OPEN, CLOSED]), _deps(world, cache))
    [note] = notifications(codec, outputs)
    assert note["state"] == "rejected" and note["kind"] == "REJECTED"
    [reason] = note["reasons"]
    assert (reason["field"], reason["code"]) == ("contractor_sirets[1]", "contractor_closed")
    assert CLOSED in reason["message"] and "FERMEE SA" in reason["message"]
    assert "2019-06-30" in reason["message"]
    assert ACTS_DELIVERY.name not in _topics(outputs)
    assert _lookups(codec, outputs) == []
    assert world.connector.calls == []  # nothing sent to the TdT
    [event] = flow_events(codec, outputs)
    assert event["error_code"] == "contractor_closed"


async def test_an_unknown_contractor_refuses_even_while_another_is_uncached(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [OPEN, UNKNOWN, OPEN]),
                                     _deps(world, _cache(unknown=(UNKNOWN,))))
    [note] = notifications(codec, outputs)
    assert note["state"] == "rejected"
    assert [(r["field"], r["code"]) for r in note["reasons"]] == [
        ("contractor_sirets[1]", "contractor_unknown")]
    assert not any(out.topic.startswith("relais.delay.") for out in outputs)


async def test_a_malformed_contractor_is_refused_at_once(codec: AvroCodec) -> None:
    world = World(codec)
    bad = OPEN[:-1] + str((int(OPEN[-1]) + 1) % 10)
    outputs = await handle_submitted(_record(world, [bad]), _deps(world, None))
    [note] = notifications(codec, outputs)
    assert note["state"] == "rejected"
    assert [(r["field"], r["code"]) for r in note["reasons"]] == [
        ("contractor_sirets[0]", "checksum")]


async def test_too_many_contractors_are_refused(codec: AvroCodec) -> None:
    world = World(codec)
    many = [make_siret("212102313", f"{i:04d}") for i in range(MAX_CONTRACTORS + 1)]
    cache = _cache(active=tuple(many))
    outputs = await handle_submitted(_record(world, many), _deps(world, cache))
    [note] = notifications(codec, outputs)
    assert note["state"] == "rejected"
    assert [(r["field"], r["code"]) for r in note["reasons"]] == [
        ("contractor_sirets", "too_many")]


async def test_an_uncached_contractor_parks_the_acte_and_asks_once(codec: AvroCodec) -> None:
    world = World(codec)
    record = _record(world, [OPEN, CLOSED])
    outputs = await handle_submitted(record, _deps(world, _cache(active=(OPEN,))))
    assert ACTS_DELIVERY.name not in _topics(outputs)
    assert _lookups(codec, outputs) == [CLOSED]  # only what the cache does not hold
    lookup = next(o for o in outputs if o.topic == REGISTRY_REQUESTED.name)
    assert codec.decode(lookup.value or b"").record["request_id"] == contractor_request_id(
        "sub-1", CLOSED)
    [parked] = [o for o in outputs if o.topic.startswith("relais.delay.")]
    assert parked.topic == tier(CONTRACTOR_WAIT_TIERS[0]).topic.name
    assert parked.value == record.value and parked.key == record.key
    assert h.get(parked.headers, h.DELAY_TARGET) == ACTS_SUBMITTED.name
    assert h.get(parked.headers, CONTRACTOR_WAITS) == "1"
    [note] = notifications(codec, outputs)
    assert note["state"] == "received" and note["kind"] == "STATE_CHANGED"
    assert note["details"]["child_event"] == CHILD_EVENT
    assert note["details"]["pending_contractors"] == CLOSED
    assert "about 15 minutes" in note["message"]


async def test_a_parked_acte_parks_again_quietly_on_the_next_tier(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [CLOSED], waits=3),
                                     _deps(world, _cache()))
    [parked] = outputs  # no notification, no second look-up
    assert parked.topic == tier(CONTRACTOR_WAIT_TIERS[3]).topic.name
    assert h.get(parked.headers, CONTRACTOR_WAITS) == "4"


async def test_after_the_last_parking_the_acte_is_refused_as_unverified(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    outputs = await handle_submitted(
        _record(world, [OPEN, CLOSED], waits=len(CONTRACTOR_WAIT_TIERS)),
        _deps(world, _cache(active=(OPEN,))))
    [note] = notifications(codec, outputs)
    assert note["state"] == "rejected"
    [reason] = note["reasons"]
    assert (reason["field"], reason["code"]) == ("contractor_sirets[1]", "contractor_unverified")
    assert "could not be asked in time" in reason["message"]
    assert "resubmit" in reason["message"]
    assert not any(o.topic.startswith("relais.delay.") for o in outputs)


async def test_a_parked_acte_goes_on_once_its_contractors_are_cached(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [OPEN], waits=2),
                                     _deps(world, _cache(active=(OPEN,))))
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]
    [onward] = [o for o in outputs if o.topic == ACTS_DELIVERY.name]
    assert h.get(onward.headers, CONTRACTOR_WAITS) is None


async def test_no_registry_configured_refuses_at_once(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [OPEN]),
                                     _deps(world, _cache(), configured=False))
    [note] = notifications(codec, outputs)
    assert [r["code"] for r in note["reasons"]] == ["contractor_unverified"]
    assert "no business registry configured" in note["reasons"][0]["message"]


async def test_other_reasons_reject_without_waiting(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [OPEN], numero_interne="bad number"),
                                     _deps(world, _cache()))
    [note] = notifications(codec, outputs)
    assert note["state"] == "rejected"
    assert "contractor_sirets[0]" not in [r["field"] for r in note["reasons"]]
    assert not any(o.topic.startswith("relais.delay.") for o in outputs)


async def test_a_warning_member_is_not_refused_by_the_cache(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [CLOSED]),
                                     _deps(world, _cache(closed=(CLOSED,)), check="warn"))
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]
    assert _lookups(codec, outputs) == [CLOSED]  # the asynchronous warning, as before


async def test_other_natures_are_not_checked(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await handle_submitted(_record(world, [CLOSED], nature=1),
                                     _deps(world, _cache(closed=(CLOSED,))))
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]


async def test_the_parked_notice_never_moves_the_acte_back(codec: AvroCodec) -> None:
    world = World(codec)
    parked = await handle_submitted(_record(world, [OPEN]), _deps(world, _cache()))
    passed = await handle_submitted(_record(world, [OPEN], waits=1),
                                    _deps(world, _cache(active=(OPEN,))))
    received = {"flow_type": "acte", "state": "received", "details": {}}
    history = [received, *flow_events(codec, parked), *flow_events(codec, passed)]
    kept = fold_history(history, BY_TYPE)
    assert [e["state"] for e in kept] == ["received", "received", "validated"]
    assert kept[1]["details"]["child_event"] == CHILD_EVENT
    late = [*history, {"flow_type": "acte", "state": "received", "details": {}}]
    assert fold_history(late, BY_TYPE)[-1]["state"] == "validated"


def test_the_worker_builds_one_cache_view_for_both_flows() -> None:
    ctx = HubContext(settings=Settings(), codec=AvroCodec(), members=DictMembers(),
                     blobs=None, journal=FakeJournal(), controls=None)
    acts = ACTS.build(ctx)
    registry = REGISTRY.build(ctx)
    views = [v for v in [*acts.views, *registry.views] if isinstance(v, RegistryCacheView)]
    assert len(views) == 1  # started once: one consumer of the cache topic per worker
    assert acts.deps.registry_cache is registry.deps.cache is views[0].cache
    assert acts.deps.contractor_wait_tiers == CONTRACTOR_WAIT_TIERS
    assert acts.deps.registry_configured is False
