"""The state machine of a PES file (flow type ``pes``).

received → validated → posted (imported into the TdT) → transmitted (to Hélios) →
acknowledged (every element of the PES_ACQUIT accepted) or partially-accepted (some
rejected); both final. A file whose every element Hélios rejected, or that the checks
refused, is ``rejected`` (a setback: a corrected resubmission may follow).
"""

from __future__ import annotations

from relais.flows.machine import FlowMachine

PES = FlowMachine(
    flow_type="pes",
    ranks={
        "received": 1,
        "validated": 2,
        "posted": 3,
        "transmitted": 4,
        "acknowledged": 5,
        "partially-accepted": 5,
    },
    finals=frozenset({"acknowledged", "partially-accepted"}),
)

#: A PES_Retour file from the comptable, delivered to the member: received → delivered.
RETOUR = FlowMachine(
    flow_type="pes-retour",
    ranks={"received": 1, "delivered": 2},
    finals=frozenset({"delivered"}),
)

MACHINES: tuple[FlowMachine, ...] = (PES, RETOUR)
BY_TYPE: dict[str, FlowMachine] = {machine.flow_type: machine for machine in MACHINES}
