"""The ``/sandbox/…`` control endpoints every partner sandbox mounts (no partner has them).

====== ===================== ===========================================================
GET    /sandbox/stats        counters, fault counters, per-account counters, the clock
POST   /sandbox/reset        forget everything, re-seed, fault knobs back to the initial
GET    /sandbox/faults       the fault knobs in force
POST   /sandbox/faults       change some knobs: a JSON object ``{"error_rate": 0.2}``
GET    /sandbox/clock        the sandbox's clock
POST   /sandbox/clock        ``{"advance_seconds": n}`` moves an adjustable clock forward
====== ===================== ===========================================================

A partner adds its own (inspection, release of a waiting item…) by subclassing
:class:`Control` and extending :meth:`Control.routes`. No authentication beyond the
server's (loopback bind, client certificate when served over TLS). Answers are JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relais.errors import Reason, ValidationError
from sandbox.common.simulator import Simulator

log = structlog.get_logger(__name__)
MAX_CONTROL_BODY = 64 * 1024
PREFIX = "/sandbox"


class Control:
    """Faults, counters, reset and the clock of one sandbox."""

    def __init__(self, simulator: Simulator[Any], partner: str) -> None:
        self.simulator = simulator
        self.partner = partner

    async def read_json(self, request: Request) -> object:
        """The request's JSON body (``{}`` when empty); ValidationError if too large or bad."""
        body = await request.body()
        if len(body) > MAX_CONTROL_BODY:
            raise ValidationError(
                "body too large", reasons=[Reason("body", "size", f"at most {MAX_CONTROL_BODY}")]
            )
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"not JSON: {exc}", reasons=[Reason("body", "format", "a JSON object")]
            ) from exc

    @staticmethod
    def invalid(exc: ValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "reasons": [asdict(r) for r in exc.reasons]}, status_code=400
        )

    async def stats(self, request: Request) -> Response:
        self.simulator.advance()
        return JSONResponse(self.simulator.stats())

    async def reset(self, request: Request) -> Response:
        self.simulator.reset()
        log.info("sandbox.reset", partner=self.partner)
        return JSONResponse({"result": "ok"})

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await self.read_json(request)
                if not isinstance(changes, dict):
                    raise ValidationError(
                        "expected a JSON object",
                        reasons=[Reason("body", "type", "a JSON object of knobs")],
                    )
                self.simulator.faults = self.simulator.faults.updated(changes)
            except ValidationError as exc:
                return self.invalid(exc)
            log.info("sandbox.faults_changed", partner=self.partner, **changes)
        return JSONResponse(asdict(self.simulator.faults))

    async def clock(self, request: Request) -> Response:
        """``GET``: the sandbox's clock; ``POST {"advance_seconds": n}`` moves it forward
        when the sandbox runs on its own adjustable clock (``relais sandbox``)."""
        if request.method == "POST":
            try:
                body = await self.read_json(request)
                seconds = body.get("advance_seconds") if isinstance(body, dict) else None
                if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                    raise ValidationError(
                        "invalid clock change",
                        reasons=[Reason("advance_seconds", "type", "a number of seconds >= 0")],
                    )
            except ValidationError as exc:
                return self.invalid(exc)
            advance = getattr(self.simulator.clock, "advance", None)
            if advance is None:
                return JSONResponse(
                    {"error": "this sandbox runs on a clock that cannot be moved"},
                    status_code=409,
                )
            advance(float(seconds))
        self.simulator.advance()
        return JSONResponse({"clock": self.simulator.now().isoformat()})

    def routes(self) -> list[Route]:
        """The common control routes; partners extend the list with their own."""
        return [
            Route(f"{PREFIX}/stats", self.stats, methods=["GET"]),
            Route(f"{PREFIX}/reset", self.reset, methods=["POST"]),
            Route(f"{PREFIX}/faults", self.faults, methods=["GET", "POST"]),
            Route(f"{PREFIX}/clock", self.clock, methods=["GET", "POST"]),
        ]
