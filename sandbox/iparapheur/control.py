"""The sandbox i-Parapheur's own ``/sandbox/…`` endpoints, beside the common ones.

====== ======================== ==========================================================
GET    /sandbox/dossiers        every dossier held: id, type, sub-type, fate, last status
POST   /sandbox/fates           ``{"<DossierID>": "sign" | "reject_viewer" |
                                "reject_signer" | "never" | "slow"}`` (before or after
                                the create; a dossier already in its circuit keeps its
                                schedule, its fate decides the steps still to come)
GET    /sandbox/behaviour       the signers' behaviour in force
POST   /sandbox/behaviour       change some of it: ``{"reject_signer_rate": 0.15}``
====== ======================== ==========================================================
"""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relais.errors import Reason, ValidationError
from sandbox.common.control import PREFIX, Control
from sandbox.iparapheur.config import FATES
from sandbox.iparapheur.state import IparapheurState


class IparapheurControl(Control):
    def __init__(self, state: IparapheurState) -> None:
        super().__init__(state, "iparapheur")
        self.state = state

    async def dossiers(self, request: Request) -> Response:
        self.state.advance()
        return JSONResponse([
            {"dossier_id": d.dossier_id, "type": d.technical_type, "sub_type": d.sub_type,
             "fate": d.fate, "status": d.status, "archived": d.archived,
             "history": len(d.history)}
            for d in self.state.dossiers.values()
        ])

    async def fates(self, request: Request) -> Response:
        try:
            body = await self.read_json(request)
            if not isinstance(body, dict):
                raise ValidationError("expected a JSON object",
                                      reasons=[Reason("body", "type", "DossierID → fate")])
            bad = [Reason(str(k), "fate", f"one of {', '.join(FATES)}")
                   for k, v in body.items() if v not in FATES]
            if bad:
                raise ValidationError("invalid fates", reasons=bad)
        except ValidationError as exc:
            return self.invalid(exc)
        for dossier_id, fate in body.items():
            self.state.fates[str(dossier_id)] = str(fate)
            held = self.state.dossiers.get(str(dossier_id))
            if held is not None:
                held.fate = str(fate)
        return JSONResponse(self.state.fates)

    async def behaviour(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await self.read_json(request)
                if not isinstance(changes, dict):
                    raise ValidationError("expected a JSON object",
                                          reasons=[Reason("body", "type", "a JSON object")])
                self.state.set_behaviour(self.state.behaviour.updated(changes))
            except ValidationError as exc:
                return self.invalid(exc)
        return JSONResponse(asdict(self.state.behaviour))

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route(f"{PREFIX}/dossiers", self.dossiers, methods=["GET"]),
            Route(f"{PREFIX}/fates", self.fates, methods=["POST"]),
            Route(f"{PREFIX}/behaviour", self.behaviour, methods=["GET", "POST"]),
        ]
