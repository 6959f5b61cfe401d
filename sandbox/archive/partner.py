"""The sandbox archive's entry in :mod:`sandbox.catalogue`."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.archive.app import create_archive_sandbox
from sandbox.archive.config import ArchiveConfig
from sandbox.common.clock import AdjustableClock
from sandbox.common.mtls import BasicAccount
from sandbox.common.partner import SandboxApp, SandboxPartner


def build(path: Path | None) -> SandboxApp:
    config = (ArchiveConfig.from_mapping(json.loads(path.read_text(encoding="utf-8")))
              if path is not None else ArchiveConfig())
    # over TLS, each application's certificate (CN = its name) is let through; Vitam reads
    # no Basic credentials, the gate's are ignored
    accounts = {name: BasicAccount(login=name, password="") for name in config.applications}
    return SandboxApp(create_archive_sandbox(config, clock=AdjustableClock()), accounts)


ARCHIVE = SandboxPartner(name="archive", title="archive (Vitam external ingest API)",
                         port_offset=3, create=build)
