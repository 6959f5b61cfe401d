"""The sandbox i-Parapheur's entry in :mod:`sandbox.catalogue`."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.common.partner import SandboxApp, SandboxPartner
from sandbox.iparapheur.app import create_iparapheur_sandbox
from sandbox.iparapheur.config import IparapheurConfig


def build(path: Path | None) -> SandboxApp:
    config = (
        IparapheurConfig.from_mapping(json.loads(path.read_text(encoding="utf-8")))
        if path is not None
        else IparapheurConfig()
    )
    accounts = {account.login: account for account in config.accounts}
    return SandboxApp(create_iparapheur_sandbox(config), accounts)


IPARAPHEUR = SandboxPartner(
    name="iparapheur", title="i-Parapheur (SOAP, WSDL 3.1)", port_offset=2, create=build
)
