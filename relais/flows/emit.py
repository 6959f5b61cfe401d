"""One way to record a flow transition: a flow event and the member's notification.

Every stage that moves a flow (the ingress, the acts stages through
``agents.acts.events.transition``, the failure router) calls :func:`emit`; it
returns two encoded records:

- a ``FlowState`` on ``relais.flows.events`` (folded into ``relais.flows.state``
  by the flow-state agent);
- a ``Notification`` on the member's notifications topic.

Both carry the ``relais_member`` header (the member's SIREN) and the flow id.

**Ids.** :func:`relais.flows.ids.transition_ids`: stable for (flow id, state,
event key), so a redelivered input produces the same ids and a consumer drops the
repeat. The event key is the child event's name for a child event, else what the
emitter passes as ``event_key`` (the failure router: the failed record's stage,
topic, partition and offset; the ingress rejection: the record's partition and
offset), else empty.

**Sequence.** :func:`sequence_of`: the state's rank in the flow type's
:class:`~relais.flows.machine.FlowMachine`; a setback or a state the machine does
not rank comes after every ranked state (highest rank + 1). A child event keeps
its flow's state and that state's sequence.

**The move rule** (``previous``: the state the emitter knows the flow is in, None
when it does not know):

- a child event (``child_event``: a prefecture message on an acknowledged acte)
  never moves the flow: it is always emitted, with ``state`` unchanged and
  ``details["child_event"]`` set, and its own ids;
- ``previous is None``: emitted (the folds of ``relais.flows.events`` judge it
  against the state they hold, with the same machine);
- ``previous == state``: a repeat: nothing is emitted (already acknowledged,
  never re-applied);
- otherwise emitted only when ``machine.allows(previous, state)``; a move the
  machine refuses (backwards, or out of a final state to a setback) emits nothing
  and logs ``flows.move_refused``.
"""

from __future__ import annotations

from typing import Any

import structlog

from relais.errors import Reason
from relais.flows.ids import transition_ids
from relais.flows.machine import FlowMachine
from relais.flows.outbound import (
    FlowContext,
    Outbound,
    encode_outbound,
    flow_state_record,
    notification_record,
)
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS

log = structlog.get_logger(__name__)

#: Notification kinds whose flow event carries an error code and message.
ERROR_KINDS = frozenset({"REJECTED", "FAILED"})


def sequence_of(machine: FlowMachine, state: str) -> int:
    """The ``sequence`` of a flow event in ``state``: its rank, or (setbacks and states
    the machine does not rank) one more than the highest rank."""
    rank = machine.ranks.get(state)
    if rank is not None:
        return rank
    return max(machine.ranks.values(), default=0) + 1


def may_emit(machine: FlowMachine, previous: str | None, state: str, *, child: bool) -> bool:
    """The move rule of :func:`emit` (see the module docstring)."""
    if child or previous is None:
        return True
    if previous == state:
        return False
    return machine.allows(previous, state)


def emit(
    codec: AvroCodec,
    flow: FlowContext,
    machine: FlowMachine,
    *,
    stage: str,
    state: str,
    previous: str | None,
    kind: str,
    message: str,
    parent: EventHeaders | None,
    reasons: list[Reason] | None = None,
    partner_ref: str | None = None,
    documents: list[dict[str, Any]] | None = None,
    details: dict[str, str] | None = None,
    child_event: str | None = None,
    event_key: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> list[Outbound]:
    """The member's notification and the flow event of one transition (``[]`` when the
    move rule refuses it or it repeats ``previous``).

    ``error_code``/``error_message`` default, for a REJECTED or FAILED ``kind``, to the
    first reason's code and ``message``.
    """
    if not may_emit(machine, previous, state, child=child_event is not None):
        log.info("flows.move_refused", flow_id=flow.flow_id, flow_type=flow.flow_type,
                 current=previous, refused=state, stage=stage)
        return []
    key = child_event or event_key or ""
    all_details = dict(details or {})
    if child_event:
        all_details["child_event"] = child_event
    note_id, state_id = transition_ids(flow.flow_id, state, key)
    note = notification_record(
        flow, kind=kind, state=state, message=message, reasons=reasons,
        partner_ref=partner_ref, documents=documents, details=all_details, event_key=key,
        event_id=note_id,
    )
    failing = kind in ERROR_KINDS
    if failing and error_code is None and reasons:
        error_code = reasons[0].code
    event = flow_state_record(
        flow, state=state, previous_state=previous, stage=stage,
        sequence=sequence_of(machine, state), partner_ref=partner_ref,
        error_code=error_code,
        error_message=error_message or (message if failing else None),
        details=all_details, reasons=reasons,
    )
    return [
        _encode(codec, flow, member_topics.notifications(flow.member_siren).name,
                "Notification", note, stage=stage, event_id=note_id, parent=parent),
        _encode(codec, flow, FLOW_EVENTS.name, "FlowState", event, stage=stage,
                event_id=state_id, parent=parent),
    ]


def _encode(
    codec: AvroCodec, flow: FlowContext, topic: str, schema_name: str,
    record: dict[str, Any], *, stage: str, event_id: str, parent: EventHeaders | None,
) -> Outbound:
    return encode_outbound(
        codec, topic=topic, key=flow.flow_id, schema_name=schema_name, record=record,
        source=f"/relais/hub/{stage}", event_id=event_id, subject=flow.flow_id,
        flow_id=flow.flow_id, parent=parent, extra={h.MEMBER: flow.member_siren},
    )
