"""The state machine of an archive transfer (flow type ``archive``).

received → transferred (the archive accepted the SIP and named its operation) →
archived (the ATR says OK or WARNING; final). ``archive-rejected`` (the ATR says KO, or
the archive refused the SIP at once) is a setback like ``rejected`` (refused before
sending), ``failed`` and ``uncertain``: a corrected resubmission may follow.
"""

from __future__ import annotations

from relais.flows.machine import DEFAULT_SETBACKS, FlowMachine

ARCHIVE_REJECTED = "archive-rejected"

ARCHIVE = FlowMachine(
    flow_type="archive",
    ranks={"received": 1, "transferred": 2, "archived": 3},
    finals=frozenset({"archived"}),
    setbacks=DEFAULT_SETBACKS | {ARCHIVE_REJECTED},
)

MACHINES: tuple[FlowMachine, ...] = (ARCHIVE,)
BY_TYPE: dict[str, FlowMachine] = {machine.flow_type: machine for machine in MACHINES}
