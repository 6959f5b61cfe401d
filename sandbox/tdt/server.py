"""Serve the sandbox TdT over HTTP with uvicorn.

``serve_tdt`` runs until cancelled or signalled (the ``relais`` CLI and demos);
``running_tdt_sandbox`` starts it inside the current event loop on a free
loopback port and stops it on exit (tests that need real sockets, e.g. client
timeouts, which an in-process ASGI transport does not enforce).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
import uvicorn
from starlette.applications import Starlette

from sandbox.tdt.app import create_tdt_sandbox
from sandbox.tdt.config import SandboxConfig
from sandbox.tdt.state import Clock, TdtState, system_clock

log = structlog.get_logger(__name__)


def _server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
    )


async def serve_tdt(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8480,
    *,
    clock: Clock = system_clock,
) -> None:
    """Serve the sandbox TdT on ``host:port`` until the server is told to exit."""
    app = create_tdt_sandbox(config, clock=clock)
    log.info("sandbox_tdt_serving", host=host, port=port)
    await _server(app, host, port).serve()


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
) -> AsyncIterator[RunningSandbox]:
    """Run the sandbox TdT in this event loop for the duration of the block.

    ``port=0`` picks a free port; the yielded ``url`` names it.
    """
    app = create_tdt_sandbox(config, clock=clock)
    server = _server(app, host, port)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the sandbox TdT server stopped while starting")
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()
        yield RunningSandbox(url=f"http://{host}:{bound[1]}", app=app)
    finally:
        server.should_exit = True
        await task
