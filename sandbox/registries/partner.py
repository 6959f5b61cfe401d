"""The sandbox registries' entry in :mod:`sandbox.catalogue`."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.common.partner import SandboxApp, SandboxPartner
from sandbox.registries.app import create_registries_sandbox
from sandbox.registries.config import RegistriesConfig


def load_config(path: Path | None) -> RegistriesConfig:
    config = (
        RegistriesConfig.from_mapping(json.loads(path.read_text(encoding="utf-8")))
        if path is not None
        else RegistriesConfig()
    )
    config.check()
    return config


def build(path: Path | None) -> SandboxApp:
    return SandboxApp(create_registries_sandbox(load_config(path)))


REGISTRIES = SandboxPartner(
    name="registries",
    title="business registries (INSEE Sirene 3.11, API Entreprise v3, Annuaire)",
    port_offset=5,
    create=build,
    client_certificates=False,  # server TLS and a header credential, as the real ones
)
