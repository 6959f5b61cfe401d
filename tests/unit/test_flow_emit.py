"""One emitter for every flow transition: ids, the member header, the move rule, sequences."""

from __future__ import annotations

from typing import Any

from agents.acts.machines import ACTE, ACTE_FOLLOWUP
from agents.ingress.gateway import ingress_router
from relais.errors import PartnerPermanentError, Reason, UnknownMemberError
from relais.flows.emit import emit, may_emit, sequence_of
from relais.flows.ids import flow_id_for, transition_ids
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import DEFAULT_MACHINE
from relais.stages import headers as h
from relais.stages.failures import FailureRouter, RetryPolicy
from relais.stages.records import FakeRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS, INGRESS_DEADLETTER

CODEC = AvroCodec()
SIREN = "212102313"
FLOW = FlowContext(flow_id_for(SIREN, "DELIB-1"), SIREN, "acte", "DELIB-1")
NOTIFICATIONS = member_topics.notifications(SIREN).name


def _emit(state: str, previous: str | None = None, **kwargs: Any) -> list[Outbound]:
    return emit(CODEC, FLOW, ACTE, stage="acts-test", state=state, previous=previous,
                kind=kwargs.pop("kind", "STATE_CHANGED"), message=f"now {state}", parent=None,
                **kwargs)


def _records(outs: list[Outbound]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert [o.topic for o in outs] == [NOTIFICATIONS, FLOW_EVENTS.name]
    return (CODEC.decode(outs[0].value or b"", expected="Notification").record,
            CODEC.decode(outs[1].value or b"", expected="FlowState").record)


def _ids(outs: list[Outbound]) -> tuple[str | None, str | None]:
    return h.get(outs[0].headers, "ce_id"), h.get(outs[1].headers, "ce_id")


def test_both_records_carry_the_member_header_and_the_flow_id() -> None:
    outs = _emit("validated", "received")
    note, event = _records(outs)
    for out in outs:
        assert h.get(out.headers, h.MEMBER) == SIREN
        assert [name for name, _ in out.headers].count(h.MEMBER) == 1
        assert h.get(out.headers, FLOW_ID_HEADER) == FLOW.flow_id
        assert out.key == FLOW.flow_id.encode()
    assert note["event_id"] == h.get(outs[0].headers, "ce_id")
    assert (event["state"], event["previous_state"], note["state"]) == (
        "validated", "received", "validated")


def test_one_id_scheme_stable_per_flow_state_and_event_key() -> None:
    first, again = _emit("posted", "validated"), _emit("posted", "validated")
    assert _ids(first) == _ids(again) == transition_ids(FLOW.flow_id, "posted")
    assert _records(first)[0]["event_id"] == _records(again)[0]["event_id"]
    other = _emit("transmitted", "posted")
    assert set(_ids(other)).isdisjoint(_ids(first))
    note_id, state_id = _ids(first)
    assert note_id != state_id
    keyed = _emit("posted", "validated", event_key="p:1")
    assert set(_ids(keyed)).isdisjoint(_ids(first))


def test_a_move_backwards_is_refused_and_a_repeat_not_reapplied() -> None:
    # an acknowledged acte whose submission is resent: "received" is not emitted again
    assert _emit("received", "acknowledged") == []
    assert _emit("posted", "transmitted") == []
    assert _emit("acknowledged", "acknowledged") == []  # a repeat: acknowledged, not re-applied
    assert _emit("failed", "acknowledged") == []  # a final state takes no setback
    assert _emit("cancelled", "acknowledged") != []  # ARAnnulation: a higher rank
    assert _emit("received") != []  # the emitter does not know: the folds judge
    assert not may_emit(ACTE_FOLLOWUP, "sent", "rejected", child=False)


def test_setbacks_are_reachable_and_can_be_left() -> None:
    failed = _emit("failed", "posted", kind="FAILED",
                   reasons=[Reason("acte", "tdt_down", "the TdT is down")])
    _, event = _records(failed)
    assert event["error_code"] == "tdt_down" and event["error_message"] == "now failed"
    assert _emit("uncertain", "validated") != []
    assert _emit("posted", "failed") != []  # a replayed dead letter
    assert _emit("validated", "uncertain") != []  # an operator settled it
    assert _emit("received", "rejected") != []  # a corrected resubmission


def test_the_sequence_is_the_machines_rank() -> None:
    for state, rank in ACTE.ranks.items():
        assert sequence_of(ACTE, state) == rank
    top = max(ACTE.ranks.values())
    assert sequence_of(ACTE, "failed") == sequence_of(ACTE, "uncertain") == top + 1
    assert _records(_emit("transmitted", "posted"))[1]["sequence"] == ACTE.ranks["transmitted"]
    assert sequence_of(ACTE_FOLLOWUP, "sent") == 3
    assert sequence_of(DEFAULT_MACHINE, "received") == 1


def test_a_child_event_keeps_the_state_and_has_its_own_ids() -> None:
    plain = _emit("acknowledged", "transmitted")
    child = _emit("acknowledged", "acknowledged", child_event="2-1", kind="PARTNER_MESSAGE")
    note, event = _records(child)
    assert event["state"] == note["state"] == "acknowledged"
    assert event["details"]["child_event"] == note["details"]["child_event"] == "2-1"
    assert event["sequence"] == _records(plain)[1]["sequence"] == ACTE.ranks["acknowledged"]
    assert set(_ids(child)).isdisjoint(_ids(plain))
    other = _emit("acknowledged", "acknowledged", child_event="3-1")
    assert set(_ids(other)).isdisjoint(_ids(child))
    assert _ids(child) == _ids(_emit("acknowledged", "acknowledged", child_event="2-1"))


def _failed_record() -> FakeRecord:
    return FakeRecord(topic="relais.acts.delivery", value=b"\x01", key=FLOW.flow_id.encode(),
                      partition=2, offset=41,
                      headers=((FLOW_ID_HEADER, FLOW.flow_id.encode()),
                               (h.MEMBER, SIREN.encode())))


def test_the_failure_routers_failed_event_goes_through_emit() -> None:
    router = FailureRouter(stage="acts-delivery", group_id="g", flow_type="acte",
                           dlq_topic="relais.dlq.acts-delivery", codec=CODEC,
                           policy=RetryPolicy(()), machine=ACTE)
    outs = router.route(_failed_record(), PartnerPermanentError("refused", partner="tdt"))
    assert [o.topic for o in outs] == ["relais.dlq.acts-delivery", NOTIFICATIONS,
                                       FLOW_EVENTS.name]
    note, event = _records(outs[1:])
    key = "acts-delivery:relais.acts.delivery:2:41"
    assert _ids(outs[1:]) == transition_ids(FLOW.flow_id, "failed", key)
    assert note["event_id"] == transition_ids(FLOW.flow_id, "failed", key)[0]
    assert event["sequence"] == sequence_of(ACTE, "failed")
    assert event["error_code"] == note["details"]["error_code"]
    assert event["details"]["attempts"] == "1"
    for out in outs[1:]:
        assert h.get(out.headers, h.MEMBER) == SIREN
    again = router.route(_failed_record(), PartnerPermanentError("refused", partner="tdt"))
    assert _ids(again[1:]) == _ids(outs[1:])  # a redelivered failure: the same ids


def test_the_ingress_dead_letter_comes_from_the_one_builder() -> None:
    record = FakeRecord(topic=member_topics.submissions("999999999").name, value=b"v",
                        key=b"k", partition=1, offset=9, headers=(("ce_id", b"x"),))
    exc = UnknownMemberError("member 999999999 is not registered")
    outs = ingress_router("relais-hub-ingress", CODEC).route(record, exc)
    assert [o.topic for o in outs] == [INGRESS_DEADLETTER.name]
    headers = outs[0].headers
    assert h.get(headers, h.DLQ_GROUP) == "relais-hub-ingress"
    assert h.get(headers, h.DLQ_ERROR_CLASS) == "relais.errors.UnknownMemberError"
    assert "UnknownMemberError" in (h.get(headers, h.DLQ_STACK) or "")
    assert h.get(headers, h.DLQ_STAGE) == "ingress"
    assert h.get(headers, h.DLQ_ORIGIN_OFFSET) == "9"
