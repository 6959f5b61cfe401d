"""acts-status on fakes: states 17/18, transmission, the stamped acte."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agents.acts.status import handle_status
from relais.errors import PartnerRefusedError, PartnerTimeoutError
from relais.flows.outbound import Outbound
from relais.stages import headers as h
from relais.stages.delays import TIERS
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    SIREN,
    FakeRecord,
    World,
    flow_events,
    flow_of,
    notifications,
    record_of,
)
from topics.acts import ACTS_STATUS

STAMPED = b"%PDF-1.4\n% stamped by the prefecture\n"
DELAYS = {t.topic.name for t in TIERS}


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _check(codec: AvroCodec, **changes: Any) -> FakeRecord:
    check = {
        "flow_id": flow_of("sub-1"), "member_siren": SIREN, "submission_id": "sub-1",
        "id_acte": "021-217500016-20260302-D2026_042-DE", "transaction_id": "4242",
        "polls": 0, "last_status": 1, "posted_at": datetime(2026, 3, 2, tzinfo=UTC),
        "awaiting": "answer",
    }
    check.update(changes)
    return record_of(codec, "ActeStatusCheck", check, ACTS_STATUS.name, flow_of("sub-1"))


def _next(codec: AvroCodec, outputs: list[Outbound]) -> list[dict[str, Any]]:
    delayed = [out for out in outputs if out.topic in DELAYS]
    assert all(h.get(out.headers, h.DELAY_TARGET) == ACTS_STATUS.name for out in delayed)
    return [codec.decode(out.value or b"").record for out in delayed]


def _as_record(codec: AvroCodec, check: dict[str, Any]) -> FakeRecord:
    return record_of(codec, "ActeStatusCheck", check, ACTS_STATUS.name, check["flow_id"])


@pytest.mark.parametrize(("state", "words"), [(17, "posted"), (18, "signed")])
async def test_held_by_the_tdt_tells_the_member_once_and_keeps_polling(
    codec: AvroCodec, state: int, words: str,
) -> None:
    world = World(codec)
    world.connector.statuses = [state, state, 1, 3]
    outputs = await handle_status(_check(codec), world.deps())
    [note] = notifications(codec, outputs)
    assert note["kind"] == "STATE_CHANGED" and note["state"] == "posted"
    assert f"waiting to be {words}" in note["message"]
    assert note["details"]["tdt_status"] == str(state)
    [event] = flow_events(codec, outputs)
    assert "child_event" in event["details"]  # the flow's state does not move
    [follow] = _next(codec, outputs)
    assert follow["last_status"] == state and follow["polls"] == 1
    again = await handle_status(_as_record(codec, follow), world.deps())
    assert notifications(codec, again) == []  # told once
    [follow] = _next(codec, again)
    posted = await handle_status(_as_record(codec, follow), world.deps())
    assert notifications(codec, posted) == []
    [follow] = _next(codec, posted)
    transmitted = await handle_status(_as_record(codec, follow), world.deps())
    assert [n["state"] for n in notifications(codec, transmitted)] == ["transmitted"]


async def test_acknowledged_then_stamped_acte_delivered_once(codec: AvroCodec) -> None:
    world = World(codec)
    world.connector.statuses = [4]
    world.connector.stamped = STAMPED
    acknowledged = await handle_status(_check(codec, last_status=3), world.deps())
    assert [n["state"] for n in notifications(codec, acknowledged)] == ["acknowledged"]
    [stamp_check] = _next(codec, acknowledged)
    assert stamp_check["awaiting"] == "stamp"
    record = _as_record(codec, stamp_check)
    first = await handle_status(record, world.deps())
    second = await handle_status(record, world.deps())  # a redelivery
    [note] = notifications(codec, first)
    [again] = notifications(codec, second)
    assert note["event_id"] == again["event_id"]  # the member drops the repeat
    [document] = note["documents"]
    assert document["media_type"] == "application/pdf"
    assert world.blobs.blobs[document["sha256"]] == STAMPED
    assert world.blobs.owners[document["sha256"]] == {SIREN}  # the member may fetch it
    assert world.blobs.stream_puts == 2  # streamed into the store, never put whole (twice:
    # the redelivery fetched it again)
    assert (note["kind"], note["state"]) == ("PARTNER_MESSAGE", "acknowledged")
    assert note["details"]["document"] == "stamped_acte"
    assert _next(codec, first) == []  # nothing more to poll


async def test_stamped_acte_not_yet_available_is_tried_along_the_tiers_then_given_up(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    world.connector.stamp_error = PartnerRefusedError("Pas de fichier tamponné", partner="tdt")
    deps = world.deps(stamp_attempts=3)
    check = _as_record(codec, {**codec.decode(_check(codec).value or b"").record,
                               "awaiting": "stamp", "last_status": 4})
    tiers = []
    for _ in range(2):
        outputs = await handle_status(check, deps)
        assert notifications(codec, outputs) == []
        tiers.append(outputs[0].topic)
        [follow] = _next(codec, outputs)
        check = _as_record(codec, follow)
    assert tiers == ["relais.delay.30s", "relais.delay.2m"]
    last = await handle_status(check, deps)
    [note] = notifications(codec, last)
    assert (note["kind"], note["state"]) == ("PARTNER_MESSAGE", "acknowledged")
    assert note["documents"] == []
    assert note["reasons"][0]["code"] == "unavailable"
    assert "Pas de fichier tamponné" in note["reasons"][0]["message"]
    assert _next(codec, last) == []
    assert len(world.connector.called("get_stamped_acte")) == 3


async def test_stamp_fetch_failing_never_raises(codec: AvroCodec) -> None:
    world = World(codec)
    world.connector.stamp_error = PartnerTimeoutError("timed out", partner="tdt")
    deps = world.deps(stamp_attempts=5)
    fifth = _as_record(codec, {**codec.decode(_check(codec).value or b"").record,
                               "awaiting": "stamp", "polls": 4})
    again = await handle_status(fifth, deps)  # a flaky TdT gets twice the attempts
    assert notifications(codec, again) == [] and len(_next(codec, again)) == 1
    tenth = _as_record(codec, {**codec.decode(_check(codec).value or b"").record,
                               "awaiting": "stamp", "polls": 9})
    outputs = await handle_status(tenth, deps)
    [note] = notifications(codec, outputs)
    assert note["state"] == "acknowledged" and note["reasons"][0]["code"] == "unavailable"
