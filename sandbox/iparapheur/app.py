"""The sandbox i-Parapheur: a Starlette app answering i-Parapheur's SOAP operations.

====== =============================== ================================================
POST   /ws-iparapheur                  SOAP 1.1 (answers inline base64, no MTOM parts)
POST   /ws-iparapheur-no-mtom          SOAP 1.1, the same operations
====== =============================== ================================================

Operations (by the request element, :mod:`sandbox.iparapheur.operations`): CreerDossier,
GetHistoDossier, GetDossier, ArchiverDossier, EffacerDossierRejete, RechercherDossiers;
any other element gets a ``S:Client`` fault. HTTP Basic is checked against the configured
accounts (401 otherwise). Sandbox-only endpoints live under ``/sandbox/``
(:mod:`sandbox.iparapheur.control`); the transport fault knobs wrap the SOAP endpoint
(:class:`sandbox.common.wrapper.FaultWrapper`), ``soap_fault_rate`` answers a SOAP
``Server`` fault. The fidelity table is ``docs/sandbox-iparapheur.md``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.common.clock import AdjustableClock, Clock
from sandbox.common.wrapper import FaultWrapper, Sleep
from sandbox.iparapheur.config import IparapheurConfig
from sandbox.iparapheur.control import IparapheurControl
from sandbox.iparapheur.operations import OPERATIONS
from sandbox.iparapheur.soap import CONTENT_TYPE, NS, SoapClientError, fault, parse_request
from sandbox.iparapheur.state import IparapheurState

log = structlog.get_logger(__name__)

PATHS = ("/ws-iparapheur", "/ws-iparapheur-no-mtom")


class SoapResponse(Response):
    """A SOAP answer; ``created`` tells the fault wrapper a dossier was committed."""

    media_type = CONTENT_TYPE

    def __init__(self, content: bytes, *, status_code: int = 200, created: bool = False) -> None:
        super().__init__(content, status_code=status_code, media_type=CONTENT_TYPE)
        self.created = created


def basic_login(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        login, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return login, password


def create_iparapheur_sandbox(
    config: IparapheurConfig | None = None,
    *,
    clock: Clock | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Starlette:
    """The app, on its own adjustable clock unless ``clock`` is given."""
    config = config or IparapheurConfig()
    state = IparapheurState(config, clock or AdjustableClock())
    accounts = {account.login: account.password for account in config.accounts}

    async def authenticate(request: Request) -> Response | None:
        credentials = basic_login(request)
        if credentials is not None and accounts.get(credentials[0]) == credentials[1]:
            return None
        return Response(b"", status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="i-Parapheur"'})

    async def endpoint(request: Request) -> Response:
        soap_fault = state.draw_fault(state.faults.soap_fault_rate)  # one draw per call
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_request_bytes:
                state.count("requests_too_large")
                return Response(b"Request Entity Too Large", status_code=413)
        if soap_fault:
            state.fault_counters["soap_fault"] += 1
            return SoapResponse(fault("Server", "org.alfresco.error.AlfrescoRuntimeException: "
                                      "sandbox: injected server fault"), status_code=500)
        try:
            element = await asyncio.to_thread(parse_request, bytes(body))
            name = element.tag.split("}")[-1]
            operation = OPERATIONS.get(name) if element.tag.startswith(f"{{{NS}}}") else None
            if operation is None:
                raise SoapClientError(f"Cannot find dispatch method for {element.tag}")
            credentials = basic_login(request)
            answer = operation(state, element, credentials[0] if credentials else None)
        except SoapClientError as exc:
            state.count("client_faults")
            return SoapResponse(fault("Client", str(exc)), status_code=500)
        state.count(f"calls_{name.removesuffix('Request')}")
        return SoapResponse(answer.body, created=answer.created)

    wrapper = FaultWrapper(
        state, "iparapheur", sleep=sleep, authenticate=authenticate,
        committed=lambda response: bool(getattr(response, "created", False)),
    )
    control = IparapheurControl(state)
    routes = [Route(path, wrapper.wrap(endpoint, creates=True), methods=["POST"])
              for path in PATHS]
    app = Starlette(routes=[*routes, *control.routes()])
    app.state.iparapheur = state
    return app
