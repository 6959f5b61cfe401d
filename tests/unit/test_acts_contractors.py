"""A contract acte's contractor SIRETs become registry look-ups, beside the acte, never in
its way."""

from __future__ import annotations

from typing import Any

import pytest

from agents.acts.contractors import MAX_CONTRACTORS, contractor_request_id
from agents.acts.validation import handle_submitted
from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from tests.unit.acts_fakes import (
    PDF,
    SIREN,
    World,
    classification_xml,
    flow_of,
    notifications,
    record_of,
    submission,
)
from topics.acts import ACTS_DELIVERY, ACTS_SUBMITTED
from topics.registry import REGISTRY_REQUESTED

OPEN = "21210231300013"
CLOSED = "00442694600010"


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


async def _validate(world: World, **changes: Any) -> list[Outbound]:
    document = world.blobs.add(PDF, "convention.pdf")
    acte = submission(document={"blob": document, "typology": None}, **changes)
    record = record_of(world.codec, "ActeSubmission", acte, ACTS_SUBMITTED.name,
                       flow_of("sub-1"))
    world.keep_classification()
    snapshot = world.snapshots.get(SIREN)
    assert snapshot is not None
    contracts = b"""<actes:NatureActe actes:CodeNatureActe="4" actes:Libelle="Contrats"
        actes:TypeAbrege="CC"><actes:TypePJNatureActe actes:CodeTypePJ="99_CO"
        actes:Libelle="Autre"/></actes:NatureActe>
  </actes:NaturesActes>"""
    world.snapshots.put_local(SIREN, {
        **snapshot, "xml": classification_xml().replace(b"</actes:NaturesActes>", contracts),
    })
    return await handle_submitted(record, world.deps())


def _lookups(codec: AvroCodec, outputs: list[Outbound]) -> list[tuple[Outbound, dict[str, Any]]]:
    return [(o, codec.decode(o.value or b"").record) for o in outputs
            if o.topic == REGISTRY_REQUESTED.name]


async def test_a_contract_goes_to_delivery_and_asks_for_each_contractor(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    outputs = await _validate(world, nature_code=4,
                              contractor_sirets=[OPEN, CLOSED, f" {OPEN} "])
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]
    assert [o.topic for o in outputs].count(ACTS_DELIVERY.name) == 1
    lookups = _lookups(codec, outputs)
    assert [value["identifier"] for _, value in lookups] == [OPEN, CLOSED]  # once each
    out, value = lookups[1]
    assert value["contract_submission_id"] == "sub-1"
    assert value["request_id"] == contractor_request_id("sub-1", CLOSED)
    assert value["member_siren"] == SIREN and out.key == SIREN.encode()
    assert h.get(out.headers, h.MEMBER) == SIREN
    assert h.get(out.headers, FLOW_ID_HEADER) == flow_id_for(SIREN, value["request_id"])


async def test_other_natures_and_refused_actes_ask_nothing(codec: AvroCodec) -> None:
    world = World(codec)
    deliberation = await _validate(world, nature_code=1, contractor_sirets=[OPEN])
    assert _lookups(codec, deliberation) == []
    refused = await _validate(World(codec), nature_code=4, numero_interne="bad number",
                              contractor_sirets=[OPEN])
    assert [n["state"] for n in notifications(codec, refused)] == ["rejected"]
    assert _lookups(codec, refused) == []


async def test_contractors_are_capped(codec: AvroCodec) -> None:
    many = [f"{OPEN[:9]}{i:05d}" for i in range(MAX_CONTRACTORS + 5)]
    outputs = await _validate(World(codec), nature_code=4, contractor_sirets=many)
    assert len(_lookups(codec, outputs)) == MAX_CONTRACTORS
