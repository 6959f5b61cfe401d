"""The flow events and notifications of the signature stages, judged by the signed flow
type's machine (an acte: ``validated`` → ``signing`` → ``signed`` → ``posted``)."""

from __future__ import annotations

from typing import Any

from agents.acts.machines import BY_TYPE
from agents.signature.deps import SignatureDeps
from relais.errors import Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.wire.headers import EventHeaders


def transition(
    deps: SignatureDeps, flow: FlowContext, *, stage: str, state: str, previous: str | None,
    kind: str, message: str, parent: EventHeaders | None,
    reasons: list[Reason] | None = None, partner_ref: str | None = None,
    details: dict[str, str] | None = None, child_event: str | None = None,
    documents: list[dict[str, Any]] | None = None,
) -> list[Outbound]:
    """A flow event and the member's notification (see :func:`relais.flows.emit.emit`)."""
    return emit(
        deps.codec, flow, machine_for(BY_TYPE, flow.flow_type), stage=stage, state=state,
        previous=previous, kind=kind, message=message, parent=parent, reasons=reasons,
        partner_ref=partner_ref, details=details, child_event=child_event,
        documents=documents,
    )
