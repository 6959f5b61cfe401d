"""The Hélios routes of the sandbox TdT: S²LOW's pages under the transport fault knobs, and
the sandbox's own Hélios control under ``/sandbox/helios/``.

====== ============================================== =========================================
POST   /modules/helios/api/helios_importer_fichier.php ``<import>`` id, resultat, message
GET    /modules/helios/api/helios_transac_get_status.php ``<transaction>`` id, resultat,
                                                       message, status
GET    /modules/helios/helios_download_acquit.php     the PES_ACQUIT, or 302 to the index
GET    /modules/helios/helios_download_file.php       the PES_Aller, or 302 to the index
GET    /modules/helios/api/helios_get_list.php        ``<liste>`` of unread PES_Retour
GET    /modules/helios/api/helios_get_retour.php      the PES_Retour, or ``<get_retour>`` KO
GET    /modules/helios/api/helios_change_status.php   ``<transaction>`` idRetour, resultat
GET    /sandbox/helios/knobs                          the comptable's knobs (JSON)
POST   /sandbox/helios/knobs                          change some: ``{"ko_rate": 0.1}``
GET    /sandbox/helios/stats                          transactions by outcome, PES_Retour
GET    /sandbox/helios/transactions/{id}              one transaction, its history
GET    /sandbox/helios/transactions/{id}/acquit       its PES_ACQUIT
POST   /sandbox/helios/reset                          forget every PES transaction and retour
====== ============================================== =========================================
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relais.errors import ValidationError
from sandbox.common.wrapper import FaultWrapper, Handler
from sandbox.tdt.endpoints import S2low
from sandbox.tdt.helios_pages import HeliosPages
from sandbox.tdt.helios_state import HeliosDesk, HeliosKnobs
from sandbox.tdt.state import TdtState

HELIOS = "/modules/helios"
CONTROL = "/sandbox/helios"
MAX_CONTROL_BODY = 64 * 1024


def import_committed(response: Response) -> bool:
    """An import S²LOW answered ``<resultat>OK</resultat>``."""
    return response.status_code == 200 and b"<resultat>OK</resultat>" in bytes(response.body)


def helios_routes(
    state: TdtState, actes: S2low, faults: FaultWrapper, knobs: HeliosKnobs | None = None
) -> list[Route]:
    """Every Hélios route over ``state`` (transport faults as ``faults`` applies them)."""
    desk = HeliosDesk(state, knobs)
    pages = HeliosPages(desk, actes)
    wrapper = FaultWrapper(state, faults.partner, sleep=faults.sleep,
                           authenticate=faults.authenticate, committed=import_committed)

    def page(path: str, handler: Handler, methods: list[str], *, creates: bool = False) -> Route:
        return Route(f"{HELIOS}/{path}", wrapper.wrap(handler, creates=creates), methods=methods)

    async def get_knobs(request: Request) -> Response:
        return JSONResponse(desk.stats()["knobs"])

    async def set_knobs(request: Request) -> Response:
        body = await request.body()
        try:
            if len(body) > MAX_CONTROL_BODY:
                raise ValueError("body too large")
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("a JSON object is expected")
            desk.knobs = desk.knobs.updated(changes)
        except ValidationError as exc:
            return JSONResponse({"error": exc.message,
                                 "reasons": [r.message for r in exc.reasons]}, status_code=400)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(desk.stats()["knobs"])

    async def stats(request: Request) -> Response:
        state.advance()
        return JSONResponse(desk.stats())

    async def transaction(request: Request) -> Response:
        state.advance()
        found = desk.transaction(int(request.path_params["transaction_id"]))
        if found is None:
            return JSONResponse({"error": "no such transaction"}, status_code=404)
        return JSONResponse(found.summary())

    async def acquit(request: Request) -> Response:
        state.advance()
        found = desk.transaction(int(request.path_params["transaction_id"]))
        if found is None or found.acquit is None:
            return JSONResponse({"error": "no PES_ACQUIT"}, status_code=404)
        return Response(found.acquit, media_type="text/xml")

    async def reset(request: Request) -> Response:
        desk.reset()
        return JSONResponse({"reset": True})

    return [
        page("api/helios_importer_fichier.php", pages.import_pes, ["POST"], creates=True),
        page("api/helios_transac_get_status.php", pages.get_status, ["GET"]),
        page("helios_download_acquit.php", pages.download_acquit, ["GET"]),
        page("helios_download_file.php", pages.download_file, ["GET"]),
        page("api/helios_get_list.php", pages.list_retours, ["GET"]),
        page("api/helios_get_retour.php", pages.get_retour, ["GET"]),
        page("api/helios_change_status.php", pages.mark_read, ["GET", "POST"]),
        Route(f"{CONTROL}/knobs", get_knobs, methods=["GET"]),
        Route(f"{CONTROL}/knobs", set_knobs, methods=["POST"]),
        Route(f"{CONTROL}/stats", stats, methods=["GET"]),
        Route(f"{CONTROL}/transactions/{{transaction_id:int}}", transaction, methods=["GET"]),
        Route(f"{CONTROL}/transactions/{{transaction_id:int}}/acquit", acquit, methods=["GET"]),
        Route(f"{CONTROL}/reset", reset, methods=["POST"]),
    ]
