"""The state machine of a registry look-up (flow type ``registry``).

received → pending (waiting for the registry's quota or for a closed circuit) → answered
(final: found, not found or not diffusible, from the cache or the registry). A number
whose check digit is wrong is ``rejected``; a look-up that outlived its retries ``failed``.
"""

from __future__ import annotations

from relais.flows.machine import FlowMachine

REGISTRY = FlowMachine(
    flow_type="registry",
    ranks={"received": 1, "pending": 2, "answered": 3},
    finals=frozenset({"answered"}),
)

MACHINES: tuple[FlowMachine, ...] = (REGISTRY,)
