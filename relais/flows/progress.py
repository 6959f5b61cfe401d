"""A flow's state only moves forward: the rule every fold of flow events applies.

Stages append transitions to ``relais.flows.events``; the flow-state agent folds
them into ``relais.flows.state`` and ``relais flows show`` folds a flow's
history. Some events arrive that must not move a flow back: a member resends
the ``submission_id`` of an acknowledged acte (the ingress answers ACCEPTED
again, same event id, and appends ``received``), a redelivered or late status
poll, a failure of a step that was already done.

The rule, on the state a flow is in and the state an event names:

- ``received`` < ``validated`` < ``posted`` (``sent`` for a follow-up) <
  ``transmitted`` < ``acknowledged`` < ``cancelled``: an event may only move a
  flow to a higher rank (or repeat its state);
- ``rejected``, ``failed`` and ``uncertain`` end an attempt without success: any
  flow that is not final may move to them, and a flow in them may move to any
  state (a corrected resubmission, a replayed dead letter, an operator settling
  an uncertain delivery);
- ``acknowledged``, ``cancelled`` and ``sent`` are final: only a higher rank
  follows them (``acknowledged`` → ``cancelled`` after an ARAnnulation);
- a state this module does not know is not judged (accepted).

Child events (``details.child_event``: a prefecture message on an acknowledged
acte) never change a flow's state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

RANKS: dict[str, int] = {
    "received": 1,
    "validated": 2,
    "posted": 3,
    "sent": 3,
    "transmitted": 4,
    "acknowledged": 5,
    "cancelled": 6,
}
SETBACKS = frozenset({"rejected", "failed", "uncertain"})
FINAL = frozenset({"acknowledged", "cancelled", "sent"})


def moves_forward(current: str | None, new: str) -> bool:
    """Whether a flow in ``current`` (None: no state yet) may take ``new``."""
    if current is None or current == new or current in SETBACKS:
        return True
    if new in SETBACKS:
        return current not in FINAL
    current_rank, new_rank = RANKS.get(current), RANKS.get(new)
    if current_rank is None or new_rank is None:
        return True
    return new_rank > current_rank


def is_child_event(event: dict[str, Any]) -> bool:
    details = event.get("details") or {}
    return isinstance(details, dict) and "child_event" in details


def fold_history(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of one flow, oldest first, without those that would move it back."""
    kept: list[dict[str, Any]] = []
    current: str | None = None
    for event in events:
        if is_child_event(event):
            kept.append(event)
        elif moves_forward(current, event["state"]):
            current = event["state"]
            kept.append(event)
    return kept
