"""The sandbox TdT: a Starlette app answering as S²LOW's actes module does.

S²LOW pages (libriciel/s2low ``public.ssl/modules/actes/``; answers in
:mod:`sandbox.tdt.endpoints`, conventions in :mod:`sandbox.tdt.php`; the fidelity table is
``docs/sandbox-tdt.md``):

====== ================================================== =======================================
POST   /modules/actes/actes_transac_create.php            ``OK\\n<id>\\n\\n`` or ``KO\\n<text>\\n``
GET    /modules/actes/actes_transac_get_status.php        ``OK\\n<state>\\n`` + the return file
POST   /modules/actes/actes_transac_cancel.php            ``OK\\n<cancellation id>\\n\\n``
GET    /modules/actes/actes_transac_get_tampon.php        302 to the stamped PDF
GET    /modules/actes/actes_classification_fetch.php      the RetourClassification + ``\\r\\n``
GET    /modules/actes/actes_classification_request.php    ``OK\\n<7-1 id>\\n\\n``
GET    /modules/actes/api/list_actes.php                  JSON, one ``status_id``, newest first
GET    /modules/actes/api/list_document_prefecture.php    JSON rows of unread messages
GET    /modules/actes/actes_transac_get_document.php      302 to ``actes_download_file.php?env=``
GET    /modules/actes/actes_download_file.php             the .tar.gz or one (stamped) file
GET    /modules/actes/api/document_prefecture_mark_as_read.php  ``{"result":"ok"}``
POST   /modules/actes/actes_transac_reponse_create.php    member reply to a 2, 3 or 4
GET    /modules/actes/actes_transac_post_confirm_api.php  17 → 1, 302 to ``url_return``
====== ================================================== =======================================

Sandbox-only endpoints live under ``/sandbox/`` (:mod:`sandbox.tdt.control`). The fault
knobs wrap every S²LOW page (:meth:`_Faults.wrap`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relais.errors import ConfigurationError, ValidationError
from sandbox.tdt.config import SandboxConfig
from sandbox.tdt.control import Control
from sandbox.tdt.endpoints import S2low
from sandbox.tdt.state import AdjustableClock, Clock, TdtState, system_clock

log = structlog.get_logger(__name__)

ACTES = "/modules/actes"
Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]


class _Faults:
    """The fault knobs around an S²LOW page (sandbox behaviour, never S²LOW's)."""

    def __init__(self, state: TdtState, sleep: Sleep) -> None:
        self.state = state
        self.sleep = sleep

    def _injected_error(self, where: str) -> Response:
        faults = self.state.faults
        headers = {}
        if faults.retry_after is not None:
            headers["Retry-After"] = str(round(faults.retry_after))
        log.info("sandbox_tdt_fault", fault=where, status=faults.error_status)
        return Response(
            f"sandbox: injected {where} error\n".encode(),
            status_code=faults.error_status,
            headers=headers,
            media_type="text/plain; charset=utf-8",
        )

    def wrap(self, handler: Handler, *, creates: bool = False) -> Handler:
        """Latency; an injected error (nothing done); the page (after the scheduled events
        due); a hang (the work is done, the answer is late); an injected error after a
        successful creation (the work is done, the answer lost)."""

        async def call(request: Request) -> Response:
            state = self.state
            faults = state.faults
            delay_ms = faults.latency_ms + faults.jitter_ms * state.fault_rng.random()
            hang = state.draw_fault(faults.timeout_rate)
            fail = state.draw_fault(faults.error_rate)
            fail_after = state.draw_fault(faults.error_after_commit_rate) if creates else False
            if delay_ms > 0:
                await self.sleep(delay_ms / 1000)
            if fail:
                state.fault_counters["error"] += 1
                return self._injected_error("pre-commit")
            state.advance()
            response = await handler(request)
            log.info("sandbox_tdt_call", path=request.url.path, status=response.status_code)
            if hang:
                state.fault_counters["timeout"] += 1
                await self.sleep(faults.hang_seconds)
            succeeded = response.status_code == 200 and bytes(response.body).startswith(b"OK")
            if fail_after and succeeded:
                state.fault_counters["error_after_commit"] += 1
                return self._injected_error("post-commit")
            return response

        return call


def create_tdt_sandbox(
    config: SandboxConfig | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Starlette:
    """The sandbox TdT as an ASGI app.

    ``clock`` (timezone-aware ``datetime`` factory; default and ``system_clock``: the
    system clock, movable forward with ``POST /sandbox/clock``) drives every state change
    and date; ``rng`` (default: seeded with ``config.seed``) drives outcomes and faults;
    ``sleep`` is awaited for latency and hang faults. The app's ``state.tdt`` is the
    :class:`TdtState`.
    """
    config = config or SandboxConfig()
    config.check()
    seeded = rng or random.Random(config.seed)  # noqa: S311 - a simulation, not cryptography
    if clock is None or clock is system_clock:
        clock = AdjustableClock()
    try:
        state = TdtState(config, clock, seeded)
    except ValidationError as exc:
        raise ConfigurationError(
            f"sandbox TdT: the classification cannot be served: {exc.message}"
        ) from exc
    pages = S2low(state)
    faults = _Faults(state, sleep)
    control = Control(state)

    def page(path: str, handler: Handler, methods: list[str], *, creates: bool = False) -> Route:
        return Route(f"{ACTES}/{path}", faults.wrap(handler, creates=creates), methods=methods)

    routes = [
        page("actes_transac_create.php", pages.create_acte, ["POST"], creates=True),
        page("actes_transac_get_status.php", pages.get_status, ["GET"]),
        page("actes_transac_cancel.php", pages.cancel, ["POST"], creates=True),
        page("actes_transac_get_tampon.php", pages.get_tampon, ["GET"]),
        page("actes_classification_fetch.php", pages.fetch_classification, ["GET"]),
        page(
            "actes_classification_request.php",
            pages.request_classification,
            ["GET", "POST"],
            creates=True,
        ),
        page("api/list_actes.php", pages.list_actes, ["GET"]),
        page("api/list_document_prefecture.php", pages.list_documents, ["GET"]),
        page("actes_transac_get_document.php", pages.get_document, ["GET"]),
        page("actes_download_file.php", pages.download_file, ["GET"]),
        page("api/document_prefecture_mark_as_read.php", pages.mark_read, ["GET", "POST"]),
        page("actes_transac_reponse_create.php", pages.create_reply, ["POST"], creates=True),
        page("actes_transac_post_confirm_api.php", pages.post_confirm, ["GET"]),
        Route("/sandbox/stats", control.stats, methods=["GET"]),
        Route("/sandbox/reset", control.reset, methods=["POST"]),
        Route("/sandbox/faults", control.faults, methods=["GET", "POST"]),
        Route("/sandbox/clock", control.clock, methods=["GET", "POST"]),
        Route("/sandbox/classification", control.classification, methods=["GET", "POST"]),
        Route("/sandbox/transmissions/{transaction_id}", control.transmission, methods=["GET"]),
        Route("/sandbox/transactions/{transaction_id}", control.transaction, methods=["GET"]),
        Route("/sandbox/transactions/{transaction_id}/release", control.release, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.tdt = state
    return app
