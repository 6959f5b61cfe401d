"""A flow's state only moves forward: the rule every fold of flow events applies.

Stages append transitions to ``relais.flows.events``; the flow-state agent folds
them into ``relais.flows.state`` and ``relais flows show`` folds a flow's
history. Some events arrive that must not move a flow back: a member resends
the ``submission_id`` of an acknowledged acte (the ingress answers ACCEPTED
again, same event id, and appends ``received``), a redelivered or late status
poll, a failure of a step that was already done.

Each flow type declares its :class:`~relais.flows.machine.FlowMachine` (the acts
ones are in ``agents/acts/machines.py``); the folds receive them as a mapping
flow type → machine (``machines_of(FLOWS)``) and judge every event with the
machine of its ``flow_type`` (:meth:`FlowMachine.allows`: ranked states forward
only, setbacks reachable until a final state and left to any state, a final
state followed only by a higher rank, an unknown state not judged). An event of
a flow type nobody declared (``unknown``: a record the ingress could not read)
is judged by :data:`DEFAULT_MACHINE`, which only knows that ``received`` comes
first and the default setbacks.

Child events (``details.child_event``: a prefecture message on an acknowledged
acte) never change a flow's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from relais.flows.machine import FlowMachine

#: The machine of a flow type that declared none: ``received`` first, default setbacks.
DEFAULT_MACHINE = FlowMachine(flow_type="*", ranks={"received": 1}, finals=frozenset())

Machines = Mapping[str, FlowMachine]


def machine_for(machines: Machines, flow_type: str | None) -> FlowMachine:
    """The machine of ``flow_type``, or :data:`DEFAULT_MACHINE` when none is declared."""
    if flow_type is None:
        return DEFAULT_MACHINE
    return machines.get(flow_type, DEFAULT_MACHINE)


def moves_forward(current: str | None, new: str, machine: FlowMachine = DEFAULT_MACHINE) -> bool:
    """Whether a flow in ``current`` (None: no state yet) may take ``new`` under ``machine``."""
    return machine.allows(current, new)


def is_child_event(event: dict[str, Any]) -> bool:
    details = event.get("details") or {}
    return isinstance(details, dict) and "child_event" in details


def fold_history(
    events: Iterable[dict[str, Any]], machines: Machines | None = None
) -> list[dict[str, Any]]:
    """The events of one flow, oldest first, without those that would move it back (each
    judged by the machine of its ``flow_type``)."""
    kept: list[dict[str, Any]] = []
    current: str | None = None
    for event in events:
        if is_child_event(event):
            kept.append(event)
            continue
        machine = machine_for(machines or {}, event.get("flow_type"))
        if moves_forward(current, event["state"], machine):
            current = event["state"]
            kept.append(event)
    return kept
