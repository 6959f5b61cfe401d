"""The sandbox archive: one Starlette app answering as Vitam's external API does.

====== ==================================================== ===================================
POST   /ingest-external/v1/ingests                          the SIP; 202 + ``X-Request-Id``
HEAD   /admin-external/v1/operations/{id}                   202 running / 200 completed,
                                                            ``X-Global-Execution-State/-Status``
GET    /ingest-external/v1/ingests/{id}/archivetransferreply the ATR; 404 until written
GET    /access-external/v1/logbookoperations                logbook search (DSL body) on
                                                            ``obIdIn``
====== ==================================================== ===================================

Sandbox-only: ``/sandbox/stats|reset|faults|clock`` (:mod:`sandbox.common.control`) and
``GET /sandbox/operations`` (every operation with its checks). Fidelity table:
``docs/sandbox-archive.md``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.archive.atr import write_atr
from sandbox.archive.checks import Check, Verdict
from sandbox.archive.config import ArchiveConfig
from sandbox.archive.state import ArchiveState, Operation, discard, spool_dir, vitam_guid
from sandbox.common.clock import Clock, system_clock
from sandbox.common.control import Control
from sandbox.common.wrapper import FaultWrapper, Sleep

log = structlog.get_logger(__name__)
MAX_QUERY_BYTES = 64 * 1024


def vitam_error(status: int, code: str, message: str, description: str) -> JSONResponse:
    """A VitamError body as Vitam's external resources answer it."""
    return JSONResponse({"httpCode": status, "code": code, "context": "IngestExternalModule",
                         "state": "KO", "message": message, "description": description},
                        status_code=status)


class ArchivePages:
    def __init__(self, state: ArchiveState) -> None:
        self.state = state

    def _tenant(self, request: Request) -> int | Response:
        text = request.headers.get("X-Tenant-Id", "")
        if not text.isdigit() or int(text) not in self.state.config.tenants:
            return vitam_error(401, "000401", "Unauthorized", f"unknown tenant {text!r}")
        return int(text)

    async def ingest(self, request: Request) -> Response:
        tenant = self._tenant(request)
        if isinstance(tenant, Response):
            return tenant
        context = request.headers.get("X-Context-Id", "DEFAULT_WORKFLOW")
        if context not in self.state.config.contexts:
            # Vitam answers a default KO ATR (AtrKoBuilder, ATR_KO_DEFAULT.xml) with a 503
            verdict = Verdict(checks=[Check("STP_UPLOAD_SIP", "KO",
                                            f"unknown workflow {context!r}")])
            atr = write_atr(vitam_guid(f"refused/{context}", "aeeaaaaaag"), verdict, "KO",
                            self.state.now(), {}, {})
            return Response(atr, status_code=503, media_type="application/xml")
        declared = request.headers.get("Content-Length", "")
        limit = self.state.config.max_sip_bytes
        if declared.isdigit() and int(declared) > limit:
            return vitam_error(413, "000413", "Request Entity Too Large", f"over {limit} bytes")
        size = 0
        with tempfile.NamedTemporaryFile(dir=spool_dir(self.state.spool), suffix=".sip",
                                         delete=False) as handle:
            path = Path(handle.name)
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ValueError
                    handle.write(chunk)
            except (ValueError, OSError):
                discard(path)
                return vitam_error(413, "000413", "Request Entity Too Large",
                                   f"over {limit} bytes")
            except BaseException:
                discard(path)  # the client went away mid-upload: nothing is created
                raise
        operation = self.state.new_operation(tenant, context,
                                             request.headers.get("X-Application-Id", ""), size)
        operation.task = asyncio.get_running_loop().create_task(
            self.state.process(operation, path))
        log.info("sandbox_archive.sip_received", operation_id=operation.operation_id,
                 bytes=size, tenant=tenant)
        return Response(status_code=202, headers={"X-Request-Id": operation.operation_id},
                        media_type="application/json")

    def _operation(self, request: Request) -> Operation | Response:
        tenant = self._tenant(request)
        if isinstance(tenant, Response):
            return tenant
        operation = self.state.operations.get(request.path_params["operation_id"])
        if operation is None or operation.tenant != tenant:
            return vitam_error(404, "000404", "Not Found", "no such operation")
        return operation

    async def operation_head(self, request: Request) -> Response:
        operation = self._operation(request)
        if isinstance(operation, Response):
            return Response(status_code=operation.status_code)
        state, status = self.state.state_of(operation)
        headers = {"X-Global-Execution-State": state, "X-Global-Execution-Status": status,
                   "X-Request-Id": operation.operation_id}
        return Response(status_code=200 if state == "COMPLETED" else 202, headers=headers)

    async def transfer_reply(self, request: Request) -> Response:
        operation = self._operation(request)
        if isinstance(operation, Response):
            return operation
        state, _ = self.state.state_of(operation)
        if state != "COMPLETED" or operation.atr is None:
            return vitam_error(404, "000404", "Not Found", "the ATR is not written yet")
        return Response(operation.atr, media_type="application/octet-stream",
                        headers={"Content-Disposition":
                                 f'attachment; filename="ATR_{operation.operation_id}.xml"'})

    async def logbook(self, request: Request) -> Response:
        tenant = self._tenant(request)
        if isinstance(tenant, Response):
            return tenant
        body = await request.body()
        try:
            query = json.loads(body) if len(body) <= MAX_QUERY_BYTES else None
            wanted = query["$query"]["$eq"]["obIdIn"]  # type: ignore[index]
        except (ValueError, TypeError, KeyError):
            return vitam_error(400, "000400", "Bad Request",
                               "only {$query: {$eq: {obIdIn: …}}} is served by the sandbox")
        rows = [self._row(op) for op in self.state.by_message_identifier(str(wanted))
                if op.tenant == tenant]
        rows.sort(key=lambda row: str(row["evDateTime"]), reverse=True)
        return JSONResponse({"httpCode": 200, "$hits": {"total": len(rows), "offset": 0,
                                                        "limit": len(rows), "size": len(rows)},
                             "$results": rows, "$facetResults": [], "$context": query})

    def _row(self, operation: Operation) -> Mapping[str, object]:
        state, status = self.state.state_of(operation)
        assert operation.verdict is not None
        return {"#id": operation.operation_id, "evId": operation.operation_id,
                "evIdProc": operation.operation_id, "evType": "PROCESS_SIP_UNITARY",
                "evTypeProc": "INGEST", "evDateTime": operation.received_at.isoformat(),
                "outcome": status if state == "COMPLETED" else "STARTED",
                "obIdIn": operation.verdict.message_identifier,
                "evIdAppSession": operation.application_id, "#tenant": operation.tenant,
                "events": []}


class ArchiveControl(Control):
    def __init__(self, state: ArchiveState) -> None:
        super().__init__(state, "archive")
        self.archive = state

    async def operations(self, request: Request) -> Response:
        out = []
        for op in self.archive.operations.values():
            state, status = self.archive.state_of(op)
            verdict = op.verdict
            out.append({"operation_id": op.operation_id, "state": state, "status": status,
                        "bytes": op.size,
                        "message_identifier": verdict.message_identifier if verdict else None,
                        "checks": [c.__dict__ for c in verdict.checks] if verdict else []})
        return JSONResponse(out)

    def routes(self) -> list[Route]:
        return [*super().routes(),
                Route("/sandbox/operations", self.operations, methods=["GET"])]


def create_archive_sandbox(config: ArchiveConfig | None = None, *, clock: Clock = system_clock,
                           sleep: Sleep = asyncio.sleep,
                           spool: Path | None = None) -> Starlette:
    config = config or ArchiveConfig()
    state = ArchiveState(config, clock, spool or Path(tempfile.gettempdir()) / "relais-archive")
    pages = ArchivePages(state)
    wrapper = FaultWrapper(state, "archive", sleep=sleep)
    routes = [
        Route("/ingest-external/v1/ingests", wrapper.wrap(pages.ingest, creates=True),
              methods=["POST"]),
        Route("/admin-external/v1/operations/{operation_id}",
              wrapper.wrap(pages.operation_head), methods=["HEAD"]),
        Route("/ingest-external/v1/ingests/{operation_id}/archivetransferreply",
              wrapper.wrap(pages.transfer_reply), methods=["GET"]),
        Route("/access-external/v1/logbookoperations", wrapper.wrap(pages.logbook),
              methods=["GET", "POST"]),
        *ArchiveControl(state).routes(),
    ]
    app = Starlette(routes=routes)
    app.state.archive = state
    return app
