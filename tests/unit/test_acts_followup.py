"""acts-followup on fakes: TdT refusals and the reply kinds S²LOW accepts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from agents.acts.followup import REPLY_TYPES, handle_followup
from agents.acts.links import ActeLink
from relais.errors import PartnerPermanentError, PartnerRefusedError
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    PDF,
    SIREN,
    TDT_URL,
    FakeRecord,
    World,
    flow_events,
    flow_of,
    notifications,
    record_of,
)
from topics.acts import ACTS_FOLLOWUPS, ACTS_STATUS

KO_TEXT = "La transaction n'est pas dans un état permettant l'annulation"


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _acte(world: World) -> None:
    world.links.put_local(ActeLink(
        flow_id=flow_of("sub-1"), member_siren=SIREN, submission_id="sub-1",
        id_acte="021-217500016-20260302-D2026_042-DE", numero_interne="D2026_042",
        decision_date=date(2026, 3, 2), nature_code=1, delivery="POSTED",
        idempotency_key="k", tdt_url=TDT_URL, transaction_id="4242",
    ))


def _followup(world: World, kind: str, **fields: Any) -> FakeRecord:
    letter = world.blobs.add(PDF, "reponse.pdf")
    followup = {
        "submission_id": f"fu-{kind}", "member_siren": SIREN, "acte_submission_id": "sub-1",
        "kind": kind, "reply_type": None, "prefecture_document_id": None,
        "description": None, "documents": [letter] if kind == "REPLY" else [],
    }
    followup.update(fields)
    return record_of(world.codec, "ActeFollowUp", followup, ACTS_FOLLOWUPS.name,
                     flow_of(f"fu-{kind}"))


async def test_cancellation_refused_by_the_tdt_is_rejected_with_its_message(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    _acte(world)
    world.connector.cancel_error = PartnerRefusedError(KO_TEXT, partner="tdt", status=200)
    outputs = await handle_followup(_followup(world, "CANCELLATION"), world.deps())
    [note] = notifications(codec, outputs)
    assert (note["kind"], note["state"], note["flow_type"]) == ("REJECTED", "rejected",
                                                                "acte-followup")
    assert KO_TEXT in note["message"]
    assert note["reasons"][0]["message"] == KO_TEXT


async def test_cancellation_sent_names_the_new_transaction(codec: AvroCodec) -> None:
    world = World(codec)
    _acte(world)
    outputs = await handle_followup(_followup(world, "CANCELLATION"), world.deps())
    assert world.connector.called("cancel") == ["4242"]
    sent = [n for n in notifications(codec, outputs) if n["state"] == "sent"]
    assert sent[0]["partner_ref"] == "5001"


async def test_transport_failure_on_cancel_is_not_a_rejection(codec: AvroCodec) -> None:
    world = World(codec)
    _acte(world)
    world.connector.cancel_error = PartnerPermanentError("HTTP 400", partner="tdt", status=400)
    with pytest.raises(PartnerPermanentError):
        await handle_followup(_followup(world, "CANCELLATION"), world.deps())


async def test_reply_refused_by_the_tdt_is_rejected_with_its_message(codec: AvroCodec) -> None:
    world = World(codec)
    _acte(world)
    world.connector.reply_error = PartnerRefusedError(KO_TEXT, partner="tdt")
    outputs = await handle_followup(
        _followup(world, "REPLY", reply_type="4-4", prefecture_document_id="77"), world.deps())
    [note] = notifications(codec, outputs)
    assert note["kind"] == "REJECTED" and KO_TEXT in note["message"]


@pytest.mark.parametrize("reply_type", ["3-3", "3-4", "4-3", "4-4", "2-2"])
async def test_accepted_reply_kinds_are_posted(codec: AvroCodec, reply_type: str) -> None:
    world = World(codec)
    _acte(world)
    outputs = await handle_followup(
        _followup(world, "REPLY", reply_type=reply_type, prefecture_document_id="77"),
        world.deps())
    assert world.connector.called("post_reply") == [("77", reply_type)]
    assert "sent" in [e["state"] for e in flow_events(codec, outputs)]


@pytest.mark.parametrize("reply_type", ["3-2", "4-2"])
async def test_acknowledgement_replies_are_refused_before_the_tdt(
    codec: AvroCodec, reply_type: str,
) -> None:
    world = World(codec)
    _acte(world)
    outputs = await handle_followup(
        _followup(world, "REPLY", reply_type=reply_type, prefecture_document_id="77"),
        world.deps())
    assert world.connector.called("post_reply") == []
    [note] = notifications(codec, outputs)
    [reason] = note["reasons"]
    assert (reason["field"], reason["code"]) == ("reply_type", "not_posted")
    assert f"{reply_type[0]}-3" in reason["message"] and f"{reply_type[0]}-4" in reason["message"]
    assert reply_type not in REPLY_TYPES


async def test_retried_cancellation_refused_because_the_first_got_through_is_sent(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    _acte(world)
    world.connector.cancel_error = PartnerRefusedError(KO_TEXT, partner="tdt")
    world.connector.statuses = [4]
    first = _followup(world, "CANCELLATION")
    retried = replace(first, headers=(*first.headers, (h.ATTEMPT, b"1")))
    outputs = await handle_followup(retried, world.deps())
    assert world.connector.called("get_status") == ["4242"]
    sent = [n for n in notifications(codec, outputs) if n["flow_type"] == "acte-followup"]
    assert [n["state"] for n in sent] == ["sent"] and "under way" in sent[0]["message"]
    polls = [o for o in outputs if h.get(o.headers, h.DELAY_TARGET) == ACTS_STATUS.name]
    assert codec.decode(polls[0].value or b"").record["awaiting"] == "cancellation"


async def test_retried_cancellation_refused_for_an_acte_not_cancellable_is_rejected(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    _acte(world)
    world.connector.cancel_error = PartnerRefusedError(KO_TEXT, partner="tdt")
    world.connector.statuses = [-1]
    first = _followup(world, "CANCELLATION")
    retried = replace(first, headers=(*first.headers, (h.ATTEMPT, b"1")))
    outputs = await handle_followup(retried, world.deps())
    assert [n["kind"] for n in notifications(codec, outputs)] == ["REJECTED"]
