"""The two records every acte transition produces: a flow event and a member notification."""

from __future__ import annotations

from typing import Any

from agents.acts.deps import ActsDeps
from relais.errors import Reason
from relais.flows.ids import event_id_for
from relais.flows.outbound import (
    FlowContext,
    Outbound,
    flow_state_record,
    notification_record,
)
from relais.stages import headers as h
from relais.wire.headers import EventHeaders
from topics import member as member_topics
from topics.catalogue import FLOW_EVENTS

#: Order of the acte states; a transition never moves a flow backwards.
SEQUENCE = {
    "received": 1,
    "validated": 2,
    "posted": 3,
    "transmitted": 4,
    "acknowledged": 5,
    "rejected": 5,
    "cancelled": 6,
    "failed": 90,
    "uncertain": 91,
}


def transition(
    deps: ActsDeps,
    flow: FlowContext,
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
) -> list[Outbound]:
    """A flow event (``relais.flows.events``) and a notification to the member.

    A ``child_event`` (a prefecture message) is recorded with the flow's state
    unchanged and ``details["child_event"]`` set; its ids depend on the child.
    """
    event_key = child_event or ""
    all_details = dict(details or {})
    if child_event:
        all_details["child_event"] = child_event
    note = notification_record(
        flow, kind=kind, state=state, message=message, reasons=reasons,
        partner_ref=partner_ref, documents=documents, details=all_details, event_key=event_key,
    )
    event = flow_state_record(
        flow, state=state, previous_state=previous, stage=stage,
        sequence=SEQUENCE.get(state, 50) + (10 if child_event else 0),
        partner_ref=partner_ref,
        error_code=reasons[0].code if reasons and kind in ("REJECTED", "FAILED") else None,
        error_message=message if kind in ("REJECTED", "FAILED") else None,
        details=all_details, reasons=reasons,
    )
    member_header = {h.MEMBER: flow.member_siren}
    return [
        deps.out(member_topics.notifications(flow.member_siren).name, flow, "Notification",
                 note, stage=stage, event_id=note["event_id"], parent=parent,
                 extra_headers=member_header),
        deps.out(FLOW_EVENTS.name, flow, "FlowState", event, stage=stage,
                 event_id=event_id_for(flow.flow_id, "state", state, event_key), parent=parent,
                 extra_headers=member_header),
    ]
