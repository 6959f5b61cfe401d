"""The sandbox TdT's own endpoints, under ``/sandbox/`` only (no S²LOW has them).

Stats, reset, faults and clock come from :mod:`sandbox.common.control`; this module adds
the inspection of transactions and transmissions, the release of waiting actes and the
publication of a new classification. Answers are JSON.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from relais.errors import Reason, ValidationError
from sandbox.common.control import PREFIX, Control
from sandbox.tdt.files import chunks_of
from sandbox.tdt.state import WAITING_STATES, TdtState, Transaction

log = structlog.get_logger(__name__)


class TdtControl(Control):
    """The common control endpoints, plus S²LOW's inspection, release and classification."""

    def __init__(self, state: TdtState) -> None:
        super().__init__(state, "tdt")
        self.state = state

    def _transaction(self, request: Request) -> Transaction | None:
        return self.state.transaction(str(request.path_params["transaction_id"]))

    async def transmission(self, request: Request) -> Response:
        """The archive a transaction travelled in (what the préfecture received or sent)."""
        self.state.advance()
        transaction = self._transaction(request)
        if transaction is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        envelope = self.state.envelopes[transaction.envelope_id]
        return StreamingResponse(
            chunks_of(envelope.path),
            media_type="application/gzip",
            headers={
                "Content-Disposition": f'attachment; filename="{transaction.packed.archive_name}"',
                "Content-Length": str(envelope.size),
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
        log.info("sandbox_tdt.released", transaction_id=transaction.id)
        return JSONResponse(transaction.summary())

    async def classification(self, request: Request) -> Response:
        """``GET``: the préfecture's current classification date; ``POST {"date_version":
        "YYYY-MM-DD"}`` publishes a new version (the next 7-1 is answered with a 7-2)."""
        state = self.state
        if request.method == "POST":
            try:
                body = await self.read_json(request)
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
                return self.invalid(exc)
            state.classification = dataclasses.replace(state.classification, date_version=version)
            log.info("sandbox_tdt.classification_published", date_version=version.isoformat())
        return JSONResponse(
            {
                "date_version": state.classification.date_version.isoformat(),
                "accounts": {
                    login: received[0].isoformat()
                    for login, received in state.received_classification.items()
                },
            }
        )

    def routes(self) -> list[Route]:
        return [
            *super().routes(),
            Route(f"{PREFIX}/classification", self.classification, methods=["GET", "POST"]),
            Route(f"{PREFIX}/transmissions/{{transaction_id}}", self.transmission, methods=["GET"]),
            Route(f"{PREFIX}/transactions/{{transaction_id}}", self.transaction, methods=["GET"]),
            Route(
                f"{PREFIX}/transactions/{{transaction_id}}/release",
                self.release,
                methods=["POST"],
            ),
        ]
