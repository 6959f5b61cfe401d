"""The sandbox's own endpoints, under ``/sandbox/`` only (no S²LOW has them).

No authentication: the sandbox binds loopback unless told otherwise. Answers are JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from datetime import date

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relais.errors import Reason, ValidationError
from sandbox.tdt.state import WAITING_STATES, TdtState, Transaction

log = structlog.get_logger(__name__)
MAX_CONTROL_BODY = 64 * 1024


class Control:
    """Faults, counters, reset, inspection and the clock of one sandbox."""

    def __init__(self, state: TdtState) -> None:
        self.state = state

    async def _json(self, request: Request) -> object:
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
    def _invalid(exc: ValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "reasons": [asdict(r) for r in exc.reasons]}, status_code=400
        )

    async def stats(self, request: Request) -> Response:
        self.state.advance()
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        log.info("sandbox_tdt_reset")
        return JSONResponse({"result": "ok"})

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await self._json(request)
                if not isinstance(changes, dict):
                    raise ValidationError(
                        "expected a JSON object",
                        reasons=[Reason("body", "type", "a JSON object of knobs")],
                    )
                self.state.faults = self.state.faults.updated(changes)
            except ValidationError as exc:
                return self._invalid(exc)
            log.info("sandbox_tdt_faults_changed", **changes)
        return JSONResponse(asdict(self.state.faults))

    def _transaction(self, request: Request) -> Transaction | None:
        return self.state.transaction(str(request.path_params["transaction_id"]))

    async def transmission(self, request: Request) -> Response:
        """The archive a transaction travelled in (what the préfecture received or sent)."""
        self.state.advance()
        transaction = self._transaction(request)
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        return Response(
            transaction.packed.archive_bytes,
            media_type="application/gzip",
            headers={
                "Content-Disposition": f'attachment; filename="{transaction.packed.archive_name}"'
            },
        )

    async def transaction(self, request: Request) -> Response:
        self.state.advance()
        transaction = self._transaction(request)
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        return JSONResponse(
            {
                **transaction.summary(),
                "login": transaction.login,
                "archive_name": transaction.packed.archive_name,
                "history": [
                    {
                        "status": e.status,
                        "at": e.at.isoformat(),
                        "has_document": e.document is not None,
                        "message": e.message,
                    }
                    for e in transaction.history
                ],
            }
        )

    async def release(self, request: Request) -> Response:
        """Move an acte waiting in 17 (to be posted) or 18 (to be signed) on to 1 (posted):
        what the signature and the "post" button do in S²LOW's web interface."""
        self.state.advance()
        transaction = self._transaction(request)
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        if transaction.status not in WAITING_STATES:
            return JSONResponse(
                {
                    "error": f"transaction {transaction.id} is in state {transaction.status}, "
                    "not 17 or 18"
                },
                status_code=409,
            )
        self.state.release(transaction)
        log.info("sandbox_tdt_released", transaction_id=transaction.id)
        return JSONResponse(transaction.summary())

    async def clock(self, request: Request) -> Response:
        """``GET``: the sandbox's clock; ``POST {"advance_seconds": n}`` moves it forward
        when the sandbox runs on its own adjustable clock (``relais sandbox``)."""
        if request.method == "POST":
            try:
                body = await self._json(request)
                seconds = body.get("advance_seconds") if isinstance(body, dict) else None
                if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                    raise ValidationError(
                        "invalid clock change",
                        reasons=[Reason("advance_seconds", "type", "a number of seconds >= 0")],
                    )
            except ValidationError as exc:
                return self._invalid(exc)
            advance = getattr(self.state.clock, "advance", None)
            if advance is None:
                return JSONResponse(
                    {"error": "this sandbox runs on a clock that cannot be moved"},
                    status_code=409,
                )
            advance(float(seconds))
        self.state.advance()
        return JSONResponse({"clock": self.state.now().isoformat()})

    async def classification(self, request: Request) -> Response:
        """``GET``: the préfecture's current classification date; ``POST {"date_version":
        "YYYY-MM-DD"}`` publishes a new version (the next 7-1 is answered with a 7-2)."""
        state = self.state
        if request.method == "POST":
            try:
                body = await self._json(request)
                raw = body.get("date_version") if isinstance(body, dict) else None
                try:
                    version = date.fromisoformat(raw) if isinstance(raw, str) else None
                except ValueError:
                    version = None
                if version is None:
                    raise ValidationError(
                        "invalid classification change",
                        reasons=[Reason("date_version", "format", "an ISO date YYYY-MM-DD")],
                    )
            except ValidationError as exc:
                return self._invalid(exc)
            state.classification = dataclasses.replace(state.classification, date_version=version)
            log.info("sandbox_tdt_classification_published", date_version=version.isoformat())
        return JSONResponse(
            {
                "date_version": state.classification.date_version.isoformat(),
                "accounts": {
                    login: received[0].isoformat()
                    for login, received in state.received_classification.items()
                },
            }
        )
