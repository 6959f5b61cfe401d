"""The wrapper every partner page runs in: transport faults, then auth, then the page.

Sandbox behaviour, never the partner's: latency; an injected error before anything is done;
the scheduled actions due; authentication (a partner hook answering its own refusal); the
page; a hang after the work is done (the answer is late); an injected error after a
successful creation (the work is done, the answer lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.faults import TransportFaults, draw_transport
from sandbox.common.simulator import Simulator

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]
Authenticate = Callable[[Request], Awaitable[Response | None]]
"""A partner's auth check: ``None`` to let the call through, or the partner's refusal."""
Committed = Callable[[Response], bool]


def succeeded(response: Response) -> bool:
    """The default test of a creation that went through: a 2xx answer."""
    return 200 <= response.status_code < 300


class FaultWrapper:
    """Wraps a partner's pages with the transport fault knobs of ``simulator``."""

    def __init__(
        self,
        simulator: Simulator[Any],
        partner: str,
        *,
        sleep: Sleep = asyncio.sleep,
        authenticate: Authenticate | None = None,
        committed: Committed = succeeded,
    ) -> None:
        self.simulator = simulator
        self.partner = partner
        self.sleep = sleep
        self.authenticate = authenticate
        self.committed = committed

    def injected_error(self, where: str) -> Response:
        faults: TransportFaults = self.simulator.faults
        headers = {}
        if faults.retry_after is not None:
            headers["Retry-After"] = str(round(faults.retry_after))
        log.info("sandbox.fault_injected", partner=self.partner, fault=where,
                 status=faults.error_status)
        return Response(
            f"sandbox: injected {where} error\n".encode(),
            status_code=faults.error_status,
            headers=headers,
            media_type="text/plain; charset=utf-8",
        )

    def wrap(self, handler: Handler, *, creates: bool = False) -> Handler:
        """``handler`` under the transport faults; ``creates``: an after-commit error may
        replace a committed answer (see ``committed``)."""

        async def call(request: Request) -> Response:
            simulator = self.simulator
            faults: TransportFaults = simulator.faults
            fate = draw_transport(faults, simulator.fault_rng, creates=creates)
            if fate.delay_ms > 0:
                await self.sleep(fate.delay_ms / 1000)
            if fate.fail_before:
                simulator.fault_counters["error"] += 1
                return self.injected_error("pre-commit")
            simulator.advance()
            refusal = await self.authenticate(request) if self.authenticate else None
            if refusal is not None:
                simulator.count("auth_refused")
                return refusal
            response = await handler(request)
            log.info(
                "sandbox.call", partner=self.partner, path=request.url.path,
                status=response.status_code,
            )
            if fate.hang:
                simulator.fault_counters["timeout"] += 1
                await self.sleep(faults.hang_seconds)
            if fate.fail_after and self.committed(response):
                simulator.fault_counters["error_after_commit"] += 1
                return self.injected_error("post-commit")
            return response

        return call
