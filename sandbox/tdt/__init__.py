"""A sandbox tiers de télétransmission speaking the S²LOW ACTES API on loopback."""

from sandbox.tdt.app import create_tdt_sandbox
from sandbox.tdt.classification import default_classification
from sandbox.tdt.config import Faults, SandboxAccount, SandboxConfig, Schedule

__all__ = [
    "Faults",
    "SandboxAccount",
    "SandboxConfig",
    "Schedule",
    "create_tdt_sandbox",
    "default_classification",
]
