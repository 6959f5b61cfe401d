"""Sandbox-only endpoints of the registries, besides the common ``/sandbox/…`` ones.

====== ===================== ============================================================
GET    /sandbox/quota        each registry's quota (limit, window) in force
POST   /sandbox/quota        ``{"sirene": {"limit": 30, "window_seconds": 60}}``
GET    /sandbox/numbers      sample numbers of each kind (active, ceased, closed, partly
                             and non-diffusible, leading zeros, La Poste exception)
GET    /sandbox/asked        per registry, how many times each number was asked
====== ===================== ============================================================
"""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relais.errors import Reason, ValidationError
from sandbox.common.control import PREFIX, Control
from sandbox.registries.quota import QuotaRule
from sandbox.registries.state import REGISTRIES, RegistriesState


class RegistriesControl(Control):
    def __init__(self, state: RegistriesState) -> None:
        super().__init__(state, "registries")
        self.state = state

    async def quota(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await self.read_json(request)
                changes = _rules(body)
            except ValidationError as exc:
                return self.invalid(exc)
            for name, rule in changes.items():
                self.state.set_rule(name, rule)
        return JSONResponse({name: asdict(self.state.rules[name]) for name in REGISTRIES})

    async def numbers(self, request: Request) -> Response:
        return JSONResponse(self.state.data.samples())

    async def asked(self, request: Request) -> Response:
        return JSONResponse({name: dict(self.state.numbers[name]) for name in REGISTRIES})

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route(f"{PREFIX}/quota", self.quota, methods=["GET", "POST"]),
            Route(f"{PREFIX}/numbers", self.numbers, methods=["GET"]),
            Route(f"{PREFIX}/asked", self.asked, methods=["GET"]),
        ]


def _rules(body: object) -> dict[str, QuotaRule]:
    if not isinstance(body, dict):
        raise ValidationError("expected a JSON object", reasons=[Reason("body", "type", "object")])
    rules, reasons = {}, []
    for name, raw in body.items():
        limit = raw.get("limit") if isinstance(raw, dict) else None
        window = raw.get("window_seconds", 60) if isinstance(raw, dict) else None
        if name not in REGISTRIES:
            reasons.append(Reason(name, "unknown", f"one of {', '.join(REGISTRIES)}"))
        elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            reasons.append(Reason(f"{name}.limit", "type", "an integer >= 0 (0: no quota)"))
        elif not isinstance(window, int | float) or isinstance(window, bool) or window <= 0:
            reasons.append(Reason(f"{name}.window_seconds", "type", "a number of seconds > 0"))
        else:
            rules[name] = QuotaRule(limit, float(window))
    if reasons:
        raise ValidationError("invalid quota", reasons=reasons)
    return rules
