"""The flows this hub runs: one line per flow package.

Everything else (the topic catalogue, the stages and timers, the ingress routes,
the failure routers, ``relais health``, the dead-letter tools, pause/resume)
derives from these declarations (:mod:`relais.flows.kit`).
"""

from __future__ import annotations

from agents.acts.flow import ACTS
from agents.archive.flow import ARCHIVE
from agents.pes.flow import PES
from agents.registry.flow import REGISTRY
from agents.signature.flow import SIGNATURE
from relais.flows.kit import Flow

FLOWS: tuple[Flow, ...] = (ACTS, ARCHIVE, REGISTRY, SIGNATURE, PES)
