"""Serve partner sandboxes with uvicorn, over HTTPS with client certificates or plain HTTP.

:func:`serve_sandboxes` runs one or several Starlette apps, each on its own port, until
cancelled or signalled (the ``relais sandbox`` CLI); :func:`running_sandbox` starts one
inside the current event loop on a free loopback port and stops it on exit (tests that need
real sockets: client timeouts or TLS, which an in-process ASGI transport does not enforce).

With a :class:`SandboxTls`, a server speaks HTTPS with the throwaway CA's server
certificate (:mod:`sandbox.common.tls`) and requires (or accepts) a client certificate of
that CA whose CN is an account's login; HTTP Basic then becomes optional
(:mod:`sandbox.common.mtls`). Every partner shares the same TLS material.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SandboxTls:
    """HTTPS for sandboxes: the TLS material, and whether a client certificate is required."""

    material: TlsMaterial
    require_client_certificate: bool = True


def shared_tls(
    directory: str | Path,
    logins: Iterable[str],
    *,
    hosts: Iterable[str] = (),
    require_client_certificate: bool = True,
) -> SandboxTls:
    """TLS material under ``directory`` with a client certificate per login (created on
    first use, completed for new logins)."""
    material = ensure_tls_material(directory, sorted(set(logins)), hosts=hosts)
    return SandboxTls(material, require_client_certificate)


@dataclass(frozen=True)
class ServedSandbox:
    """One partner sandbox to serve: its name, app, accounts and port (0: a free one)."""

    name: str
    app: Starlette
    accounts: Mapping[str, BasicAccount] = field(default_factory=dict)
    port: int = 0
    client_certificates: bool = True
    """False: HTTPS with the server certificate only, no client-certificate gate
    (:attr:`sandbox.common.partner.SandboxPartner.client_certificates`)."""


def gated(
    app: Starlette,
    accounts: Mapping[str, BasicAccount],
    tls: SandboxTls | None,
    *,
    client_certificates: bool = True,
) -> tuple[AsgiApp, dict[str, Any]]:
    """The ASGI app to serve and the uvicorn TLS options (none for plain HTTP). Without
    ``client_certificates`` the app is served as is over server-only TLS: no certificate
    asked, headers (a bearer token, an API key) untouched."""
    if tls is None:
        return app, {}
    if not client_certificates:
        return app, server_tls_options(tls.material)
    registry = PeerCertificates()
    gate = ClientCertificateGate(
        app, registry, dict(accounts), required=tls.require_client_certificate
    )
    options = tls_server_options(tls.material, registry, required=tls.require_client_certificate)
    return gate, options


def server_tls_options(material: TlsMaterial) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: HTTPS with the server certificate only."""
    return {"ssl_certfile": str(material.server_cert), "ssl_keyfile": str(material.server_key)}


def uvicorn_server(
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


def url_of(host: str, port: int, tls: SandboxTls | None) -> str:
    return f"{'https' if tls else 'http'}://{host}:{port}"


async def serve_sandboxes(
    sandboxes: Sequence[ServedSandbox], host: str = "127.0.0.1", *, tls: SandboxTls | None = None
) -> None:
    """Serve every sandbox on ``host``, each on its port, until the servers are told to exit
    (one stopping stops the others)."""
    servers = []
    for sandbox in sandboxes:
        served, options = gated(sandbox.app, sandbox.accounts, tls,
                                client_certificates=sandbox.client_certificates)
        servers.append(uvicorn_server(served, host, sandbox.port, options))
        log.info(
            "sandbox.serving",
            partner=sandbox.name,
            host=host,
            port=sandbox.port,
            url=url_of(host, sandbox.port, tls),
            client_certificate=(
                None
                if tls is None
                else "not asked"
                if not sandbox.client_certificates
                else "required"
                if tls.require_client_certificate
                else "optional"
            ),
            tls_dir=str(tls.material.directory) if tls else None,
        )
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    # "ready" only once every server listens: a port taken by someone else ends the
    # process before supervisors (ops/stack.py) take it for ready
    for _ in range(1200):  # uvicorn exposes a flag, not an event; at most 60 s
        if all(server.started for server in servers) or any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    if all(server.started for server in servers):
        log.info("sandbox.ready", partners=[sandbox.name for sandbox in sandboxes])
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers:
            server.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


@dataclass(frozen=True)
class RunningApp:
    """A sandbox listening on ``url``."""

    url: str
    app: Starlette


@asynccontextmanager
async def running_sandbox(
    app: Starlette,
    accounts: Mapping[str, BasicAccount] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: SandboxTls | None = None,
    client_certificates: bool = True,
) -> AsyncIterator[RunningApp]:
    """Run ``app`` in this event loop for the duration of the block.

    ``port=0`` picks a free port; the yielded ``url`` names it (``https://`` with ``tls``).
    """
    served, options = gated(app, accounts or {}, tls, client_certificates=client_certificates)
    server = uvicorn_server(served, host, port, options)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the sandbox server stopped while starting")
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()
        yield RunningApp(url=url_of(host, bound[1], tls), app=app)
    finally:
        server.should_exit = True
        await task
