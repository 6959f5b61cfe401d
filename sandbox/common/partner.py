"""What a partner sandbox registers in :mod:`sandbox.catalogue` to be served by
``relais sandbox``: its name, its port and how to build its app."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette

from sandbox.common.mtls import BasicAccount

BASE_PORT = 8480
"""Port of the first sandbox; a partner without a ``sandbox_<name>_port`` setting listens
on the base port plus its ``port_offset``."""


@dataclass(frozen=True)
class SandboxApp:
    """A built partner sandbox: the app, and the accounts that get a client certificate
    (CN = login) and may use HTTP Basic behind the certificate gate."""

    app: Starlette
    accounts: Mapping[str, BasicAccount] = field(default_factory=dict)


SandboxFactory = Callable[[Path | None], SandboxApp]
"""Builds the sandbox from an optional JSON configuration file (``None``: the defaults);
raises ConfigurationError for a configuration that cannot run."""


@dataclass(frozen=True)
class SandboxPartner:
    """One partner sandbox of the catalogue."""

    name: str
    """Short name: ``relais sandbox --only <name>``, setting ``sandbox_<name>_port``,
    log events ``sandbox_<name>_…``."""
    title: str
    """What it imitates, printed by the CLI (e.g. ``TdT (S²LOW ACTES)``)."""
    port_offset: int
    """Added to the base port when no ``sandbox_<name>_port`` setting exists."""
    create: SandboxFactory
    client_certificates: bool = True
    """Whether the TLS client-certificate gate (:mod:`sandbox.common.mtls`) fronts it. A
    partner that authenticates by a header credential over plain server TLS (the business
    registries: an API key, a bearer token) opts out: served over HTTPS, no client
    certificate asked, its ``Authorization`` header passed through untouched."""

    @property
    def port_setting(self) -> str:
        return f"sandbox_{self.name}_port"
