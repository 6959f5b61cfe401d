"""Serve the sandbox TdT with uvicorn, over HTTPS with client certificates or plain HTTP.

``serve_tdt`` runs until cancelled or signalled (the ``relais`` CLI and demos);
``running_tdt_sandbox`` starts it inside the current event loop on a free
loopback port and stops it on exit (tests that need real sockets, e.g. client
timeouts or TLS, which an in-process ASGI transport does not enforce).

With a :class:`SandboxTls` (see :func:`sandbox_tls`), the server speaks HTTPS with
its throwaway CA's server certificate and requires (or accepts) a client
certificate of that CA; the certificate's CN is the account's login, and HTTP Basic
becomes optional, as on S²LOW (:mod:`sandbox.common.mtls`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette

from sandbox.common.mtls import (
    AsgiApp,
    BasicAccount,
    ClientCertificateGate,
    PeerCertificates,
    tls_server_options,
)
from sandbox.common.tls import TlsMaterial, ensure_tls_material
from sandbox.tdt.app import create_tdt_sandbox
from sandbox.tdt.config import SandboxConfig
from sandbox.tdt.state import Clock, TdtState, system_clock

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SandboxTls:
    """HTTPS for the sandbox: its TLS material, and whether a client certificate is required."""

    material: TlsMaterial
    require_client_certificate: bool = True


def sandbox_tls(
    directory: str | Path,
    config: SandboxConfig | None = None,
    *,
    hosts: Iterable[str] = (),
    require_client_certificate: bool = True,
) -> SandboxTls:
    """TLS material under ``directory`` with a client certificate per account of ``config``
    (created on first use, completed for new accounts)."""
    accounts = (config or SandboxConfig()).accounts
    material = ensure_tls_material(directory, [a.login for a in accounts], hosts=hosts)
    return SandboxTls(material, require_client_certificate)


def _served(
    app: Starlette, config: SandboxConfig | None, tls: SandboxTls | None
) -> tuple[AsgiApp, dict[str, Any]]:
    """The ASGI app to serve and the uvicorn TLS options (none for plain HTTP)."""
    if tls is None:
        return app, {}
    registry = PeerCertificates()
    accounts = {
        a.login: BasicAccount(a.login, a.password) for a in (config or SandboxConfig()).accounts
    }
    gate = ClientCertificateGate(
        app, registry, accounts, required=tls.require_client_certificate
    )
    options = tls_server_options(
        tls.material, registry, required=tls.require_client_certificate
    )
    return gate, options


def _server(
    app: AsgiApp, host: str, port: int, tls_options: dict[str, Any] | None = None
) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
            **(tls_options or {}),
        )
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
    served, options = _served(app, config, tls)
    server = _server(served, host, port, options)
    scheme = "https" if tls else "http"
    log.info(
        "sandbox_tdt_serving",
        host=host,
        port=port,
        url=f"{scheme}://{host}:{port}",
        client_certificate=(
            None if tls is None else "required" if tls.require_client_certificate else "optional"
        ),
        tls_dir=str(tls.material.directory) if tls else None,
    )
    await server.serve()


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
    served, options = _served(app, config, tls)
    server = _server(served, host, port, options)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the sandbox TdT server stopped while starting")
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()
        scheme = "https" if tls else "http"
        yield RunningSandbox(url=f"{scheme}://{host}:{bound[1]}", app=app)
    finally:
        server.should_exit = True
        await task
