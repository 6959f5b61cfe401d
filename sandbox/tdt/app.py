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

Sandbox-only endpoints live under ``/sandbox/`` (the common ones of
:mod:`sandbox.common.control` and S²LOW's inspection ones, :mod:`sandbox.tdt.control`).
The transport fault knobs wrap every S²LOW page (:class:`sandbox.common.wrapper.FaultWrapper`);
S²LOW's own (anomalies, prefecture messages, duplicates) are drawn by :class:`TdtState`.
"""

from __future__ import annotations

import asyncio
import random

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from relais.errors import ConfigurationError, ValidationError
from sandbox.common.clock import AdjustableClock, Clock, system_clock
from sandbox.common.wrapper import FaultWrapper, Handler, Sleep
from sandbox.tdt.config import SandboxConfig
from sandbox.tdt.control import TdtControl
from sandbox.tdt.endpoints import S2low
from sandbox.tdt.helios_routes import helios_routes
from sandbox.tdt.state import TdtState

ACTES = "/modules/actes"


def s2low_committed(response: Response) -> bool:
    """A creation S²LOW answered ``OK`` (its pages answer 200 with ``KO`` when refusing)."""
    return response.status_code == 200 and bytes(response.body).startswith(b"OK")


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
    faults = FaultWrapper(state, "tdt", sleep=sleep, committed=s2low_committed)
    control = TdtControl(state)

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
        *helios_routes(state, pages, faults),
        *control.routes(),
    ]
    app = Starlette(routes=routes)
    app.state.tdt = state
    return app
