"""A flow never moves back: the rule, the flow-state agent's fold and `flows show`'s fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.acts.machines import ACTE, ACTE_FOLLOWUP, BY_TYPE
from agents.flow_state import FlowStates, _fold
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, flow_state_record
from relais.flows.progress import DEFAULT_MACHINE, fold_history, machine_for, moves_forward
from relais.wire.avro_codec import AvroCodec

FLOW = FlowContext(flow_id_for("212102313", "DELIB-1"), "212102313", "acte", "DELIB-1")
ACTE_PATH = ["received", "validated", "posted", "transmitted", "acknowledged", "cancelled"]


def event(state: str, **details: str) -> dict[str, Any]:
    return flow_state_record(FLOW, state=state, previous_state=None, stage="s", sequence=1,
                             details=details)


@pytest.mark.parametrize("index", range(1, len(ACTE_PATH)))
def test_no_state_of_the_acte_path_moves_back(index: int) -> None:
    current = ACTE_PATH[index]
    for earlier in ACTE_PATH[:index]:
        assert not moves_forward(current, earlier, ACTE), (current, earlier)
    for later in ACTE_PATH[index + 1:]:
        assert moves_forward(current, later, ACTE), (current, later)
    assert moves_forward(current, current, ACTE)


def test_setbacks_are_reachable_before_the_end_and_can_be_left() -> None:
    for state in ["received", "validated", "posted", "transmitted"]:
        assert moves_forward(state, "failed", ACTE) and moves_forward(state, "rejected", ACTE)
        assert moves_forward(state, "uncertain", ACTE)
    for machine, final in [(ACTE, "acknowledged"), (ACTE, "cancelled"), (ACTE_FOLLOWUP, "sent")]:
        for setback in ["failed", "rejected", "uncertain"]:
            assert not moves_forward(final, setback, machine), (final, setback)
    assert moves_forward("rejected", "received", ACTE)  # a corrected resubmission
    assert moves_forward("failed", "posted", ACTE)  # a replayed dead letter
    assert moves_forward("uncertain", "posted", ACTE)  # an operator settled it
    assert moves_forward(None, "received", ACTE)
    assert moves_forward("received", "some-new-state", ACTE)


def test_a_resent_submission_of_an_acknowledged_acte_stays_out_of_the_history() -> None:
    history = [event(s) for s in ["received", "validated", "posted", "acknowledged"]]
    history += [event("acknowledged", child_event="courrier-simple"), event("received"),
                event("rejected"), event("cancelled")]
    kept = [(e["state"], "child_event" in e["details"])
            for e in fold_history(history, BY_TYPE)]
    assert kept == [("received", False), ("validated", False), ("posted", False),
                    ("acknowledged", False), ("acknowledged", True), ("cancelled", False)]


@dataclass
class FakeMessage:
    topic: str = "relais.flows.events"
    partition: int = 0
    offset: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FakeEvent:
    key: bytes
    value: bytes
    message: FakeMessage = field(default_factory=FakeMessage)


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes, headers: Any) -> None:
        self.sent.append(value)


async def test_the_agent_copies_forward_moves_only() -> None:
    codec = AvroCodec()
    states, topic = FlowStates(BY_TYPE), FakeTopic()
    sequence = ["received", "validated", "posted", "acknowledged", "received", "failed",
                "cancelled", "validated"]
    for state in sequence:
        value = codec.encode("FlowState", event(state))
        await _fold(FakeEvent(FLOW.flow_id.encode(), value), codec, states, topic)
    await _fold(FakeEvent(b"k", b"not avro"), codec, states, topic)
    copied = [codec.decode(v, expected="FlowState").record["state"] for v in topic.sent]
    assert copied == ["received", "validated", "posted", "acknowledged", "cancelled"]
    assert states.current(FLOW.flow_id) == "cancelled"


def test_each_flow_type_is_judged_by_its_own_machine() -> None:
    assert machine_for(BY_TYPE, "acte") is ACTE
    assert machine_for(BY_TYPE, "acte-followup") is ACTE_FOLLOWUP
    assert machine_for(BY_TYPE, "unknown") is DEFAULT_MACHINE
    # "sent" is final for a follow-up, and unknown to an acte (not judged there)
    assert not moves_forward("sent", "received", ACTE_FOLLOWUP)
    assert moves_forward("sent", "received", ACTE)
    # a type nobody declared: only "received comes first" and the setbacks are known
    assert moves_forward("anything", "received", DEFAULT_MACHINE)


def test_the_fold_uses_the_machine_of_each_events_flow_type() -> None:
    followup = FlowContext(FLOW.flow_id, FLOW.member_siren, "acte-followup", "F-1")
    events = [flow_state_record(followup, state=s, previous_state=None, stage="s", sequence=1)
              for s in ["received", "sent", "rejected", "received"]]
    # with the follow-up machine, "sent" is final: neither the setback nor "received" follow
    assert [e["state"] for e in fold_history(events, BY_TYPE)] == ["received", "sent"]
    # without a declared machine the default does not know "sent": everything is kept
    assert [e["state"] for e in fold_history(events, {})] == [
        "received", "sent", "rejected", "received"]


def test_the_agent_judges_with_the_events_machine() -> None:
    states = FlowStates(BY_TYPE)
    for state in ["received", "validated", "posted", "acknowledged"]:
        assert states.apply(FLOW.flow_id, event(state))
    assert not states.apply(FLOW.flow_id, event("received"))  # a resend of the acte
    assert not states.apply(FLOW.flow_id, event("failed"))  # a late failure
    assert states.current(FLOW.flow_id) == "acknowledged"
