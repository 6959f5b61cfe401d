"""Serve the sandbox TdT (:mod:`sandbox.common.server` with the TdT's accounts).

``serve_tdt`` runs it alone until cancelled or signalled; ``running_tdt_sandbox`` starts it
inside the current event loop on a free loopback port and stops it on exit (tests that need
real sockets, e.g. client timeouts or TLS). With a :class:`SandboxTls` the certificate's CN
is the account's login, and HTTP Basic becomes optional, as on S²LOW.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette

from sandbox.common.clock import Clock, system_clock
from sandbox.common.mtls import BasicAccount
from sandbox.common.server import (
    SandboxTls,
    ServedSandbox,
    running_sandbox,
    serve_sandboxes,
    shared_tls,
)
from sandbox.tdt.app import create_tdt_sandbox
from sandbox.tdt.config import SandboxConfig
from sandbox.tdt.state import TdtState

__all__ = [
    "RunningSandbox",
    "SandboxTls",
    "running_tdt_sandbox",
    "sandbox_tls",
    "serve_tdt",
    "tdt_accounts",
]


def tdt_accounts(config: SandboxConfig | None = None) -> dict[str, BasicAccount]:
    """The accounts of ``config`` as the certificate gate knows them."""
    return {
        a.login: BasicAccount(a.login, a.password) for a in (config or SandboxConfig()).accounts
    }


def sandbox_tls(
    directory: str | Path,
    config: SandboxConfig | None = None,
    *,
    hosts: Iterable[str] = (),
    require_client_certificate: bool = True,
) -> SandboxTls:
    """TLS material under ``directory`` with a client certificate per account of ``config``
    (created on first use, completed for new accounts)."""
    return shared_tls(
        directory,
        tdt_accounts(config),
        hosts=hosts,
        require_client_certificate=require_client_certificate,
    )


async def serve_tdt(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8480,
    *,
    clock: Clock = system_clock,
    tls: SandboxTls | None = None,
) -> None:
    """Serve the sandbox TdT on ``host:port`` until the server is told to exit."""
    app = create_tdt_sandbox(config, clock=clock)
    await serve_sandboxes([ServedSandbox("tdt", app, tdt_accounts(config), port)], host, tls=tls)


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox TdT listening on ``url``; ``state`` is its live state."""

    url: str
    app: Starlette

    @property
    def state(self) -> TdtState:
        state: TdtState = self.app.state.tdt
        return state


@asynccontextmanager
async def running_tdt_sandbox(
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = system_clock,
    tls: SandboxTls | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Run the sandbox TdT in this event loop for the duration of the block.

    ``port=0`` picks a free port; the yielded ``url`` names it (``https://`` with ``tls``).
    """
    app = create_tdt_sandbox(config, clock=clock)
    async with running_sandbox(app, tdt_accounts(config), host=host, port=port, tls=tls) as running:
        yield RunningSandbox(url=running.url, app=app)
