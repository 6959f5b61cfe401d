"""The two records every acte transition produces: a flow event and a member notification.

A thin wrapper over :func:`relais.flows.emit.emit` with the acts machines
(:mod:`agents.acts.machines`): same ids, same ``relais_member`` header, same move
rule as every other emitter.
"""

from __future__ import annotations

from typing import Any

from agents.acts.deps import ActsDeps
from agents.acts.machines import BY_TYPE
from relais.errors import Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.wire.headers import EventHeaders


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
    """A flow event (``relais.flows.events``) and a notification to the member, or
    nothing when the move is refused by the flow type's machine (see
    :func:`relais.flows.emit.emit`).

    A ``child_event`` (a prefecture message) is recorded with the flow's state
    unchanged and ``details["child_event"]`` set; its ids depend on the child.
    """
    return emit(
        deps.codec, flow, machine_for(BY_TYPE, flow.flow_type), stage=stage, state=state,
        previous=previous, kind=kind, message=message, parent=parent, reasons=reasons,
        partner_ref=partner_ref, documents=documents, details=details,
        child_event=child_event,
    )
