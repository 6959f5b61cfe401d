"""A flow never moves back: the rule, the flow-state agent's fold and `flows show`'s fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.flow_state import FlowStates, _fold
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, flow_state_record
from relais.flows.progress import fold_history, moves_forward
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
        assert not moves_forward(current, earlier), (current, earlier)
    for later in ACTE_PATH[index + 1:]:
        assert moves_forward(current, later), (current, later)
    assert moves_forward(current, current)


def test_setbacks_are_reachable_before_the_end_and_can_be_left() -> None:
    for state in ["received", "validated", "posted", "transmitted"]:
        assert moves_forward(state, "failed") and moves_forward(state, "rejected")
        assert moves_forward(state, "uncertain")
    for final in ["acknowledged", "cancelled", "sent"]:
        for setback in ["failed", "rejected", "uncertain"]:
            assert not moves_forward(final, setback), (final, setback)
    assert moves_forward("rejected", "received")  # a corrected resubmission
    assert moves_forward("failed", "posted")  # a replayed dead letter
    assert moves_forward("uncertain", "posted")  # an operator settled it
    assert moves_forward(None, "received") and moves_forward("received", "some-new-state")


def test_a_resent_submission_of_an_acknowledged_acte_stays_out_of_the_history() -> None:
    history = [event(s) for s in ["received", "validated", "posted", "acknowledged"]]
    history += [event("acknowledged", child_event="courrier-simple"), event("received"),
                event("rejected"), event("cancelled")]
    kept = [(e["state"], "child_event" in e["details"]) for e in fold_history(history)]
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
    states, topic = FlowStates(), FakeTopic()
    sequence = ["received", "validated", "posted", "acknowledged", "received", "failed",
                "cancelled", "validated"]
    for state in sequence:
        value = codec.encode("FlowState", event(state))
        await _fold(FakeEvent(FLOW.flow_id.encode(), value), codec, states, topic)
    await _fold(FakeEvent(b"k", b"not avro"), codec, states, topic)
    copied = [codec.decode(v, expected="FlowState").record["state"] for v in topic.sent]
    assert copied == ["received", "validated", "posted", "acknowledged", "cancelled"]
    assert states.current(FLOW.flow_id) == "cancelled"
