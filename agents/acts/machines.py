"""The state machines of the acts flow types (``acte`` and ``acte-followup``).

The acts flow declaration (``agents/acts/flow.py``) lists them in its ``machines``;
:func:`relais.flows.emit.emit` and the folds of ``relais.flows.events``
(:mod:`relais.flows.progress`) judge every move of an acts flow with them.
"""

from __future__ import annotations

from relais.flows.machine import FlowMachine

#: An acte: received → validated → [signing → signed (in the member's i-Parapheur, when
#: its actes are signed: ``agents/signature``)] → posted (to the TdT) → transmitted (to the
#: prefecture) → acknowledged (accusé de réception) → cancelled (ARAnnulation).
ACTE = FlowMachine(
    flow_type="acte",
    ranks={
        "received": 1,
        "validated": 2,
        "signing": 3,
        "signed": 4,
        "posted": 5,
        "transmitted": 6,
        "acknowledged": 7,
        "cancelled": 8,
    },
    finals=frozenset({"acknowledged", "cancelled"}),
)

#: A follow-up of an acte (a cancellation, a reply to the prefecture): received →
#: validated → sent (to the TdT); sent is final.
ACTE_FOLLOWUP = FlowMachine(
    flow_type="acte-followup",
    ranks={"received": 1, "validated": 2, "sent": 3},
    finals=frozenset({"sent"}),
)

#: Both, for the flow declaration's ``machines``.
MACHINES: tuple[FlowMachine, ...] = (ACTE, ACTE_FOLLOWUP)

#: The same, by flow type (what :func:`relais.flows.kit.machines_of` gives for the acts flow).
BY_TYPE: dict[str, FlowMachine] = {machine.flow_type: machine for machine in MACHINES}
