"""The sandbox TdT's entry in :mod:`sandbox.catalogue`."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.common.partner import SandboxApp, SandboxPartner
from sandbox.tdt.app import create_tdt_sandbox
from sandbox.tdt.config import SandboxConfig
from sandbox.tdt.server import tdt_accounts


def load_config(path: Path | None) -> SandboxConfig:
    """The configuration in the JSON file ``path`` (accounts, schedule, faults), or the
    default one; ConfigurationError when it cannot run."""
    config = (
        SandboxConfig.from_mapping(json.loads(path.read_text(encoding="utf-8")))
        if path is not None
        else SandboxConfig()
    )
    config.check()
    return config


def build(path: Path | None) -> SandboxApp:
    config = load_config(path)
    return SandboxApp(create_tdt_sandbox(config), tdt_accounts(config))


TDT = SandboxPartner(name="tdt", title="TdT (S²LOW ACTES API)", port_offset=0, create=build)
