"""Run the hub API under uvicorn, inside an already running event loop.

``relais api`` calls :func:`serve_api`; it can equally run beside other tasks of
the same process (cancel its task to stop it, gracefully). Connections are
admitted through a :class:`~relais.api.limits.ConnectionGate` (per-client and
total limits, a deadline for request heads) and uvicorn's and asyncio's own log
lines are rate-limited, so a flood of connections neither exhausts descriptors
nor the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Generator

import structlog
import uvicorn
from starlette.types import ASGIApp

from relais.api.limits import (
    ConnectionGate,
    RateLimitedLog,
    RateLimitFilter,
    ServerLimits,
    gated_protocol,
)
from relais.errors import InfrastructureError

logger = structlog.get_logger(__name__)

_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn's server with optional signal handling and a start-up callback."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        handle_signals: bool,
        on_started: Callable[[], None] | None,
    ) -> None:
        super().__init__(config)
        self._handle_signals = handle_signals
        self._on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Unlike uvicorn, do not re-raise the signal after the graceful shutdown:
        # serve_api then simply returns and the caller decides how to exit.
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        raise InfrastructureError(
            f"The API cannot listen on {host}:{port}: {exc.strerror or exc}."
        ) from exc


async def serve_api(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    handle_signals: bool = True,
    graceful_timeout: int = 10,
    started: asyncio.Event | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until stopped.

    Binding happens first: a busy port or a bad address raises
    InfrastructureError (uvicorn would call ``sys.exit`` instead). ``started``,
    if given, is set once the socket accepts connections. The server stops
    gracefully (requests in flight get ``graceful_timeout`` seconds) on SIGINT
    or SIGTERM when ``handle_signals`` is true and this runs in the main
    thread, and whenever the awaiting task is cancelled; after a signal the
    function returns normally, after a cancellation it re-raises
    CancelledError. uvicorn's own logging configuration and access log are
    disabled: its loggers propagate to whatever Relais configured, through a
    rate limit. ``limits`` bound connections and request heads (defaults:
    :class:`~relais.api.limits.ServerLimits`).
    """
    limits = limits or ServerLimits()
    log_limiter = RateLimitedLog()
    gate = ConnectionGate(limits, log_limiter)
    filters = [(logging.getLogger(name), RateLimitFilter(log_limiter, name))
               for name in ("uvicorn.error", "asyncio")]
    for stdlib_logger, log_filter in filters:
        stdlib_logger.addFilter(log_filter)
    sock = _listen(host, port, limits.backlog())
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        http=gated_protocol(gate),
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=graceful_timeout,
        backlog=limits.backlog(),
    )

    def on_started() -> None:
        logger.info("api.listening", host=bound_host, port=bound_port)
        if started is not None:
            started.set()

    server = _Server(config, handle_signals=handle_signals, on_started=on_started)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="relais-api")
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise
    finally:
        sock.close()
        for stdlib_logger, log_filter in filters:
            stdlib_logger.removeFilter(log_filter)
        logger.info("api.stopped", host=bound_host, port=bound_port, refused=gate.refused,
                    evicted=gate.evicted)
