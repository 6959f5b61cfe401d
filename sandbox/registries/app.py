"""The sandbox registries: one Starlette app answering as the three registries do.

====== =============================================================== =====================
GET    /api-sirene/3.11/siren/{siren}                                  Sirene unit
GET    /api-sirene/3.11/siret/{siret}                                  Sirene establishment
GET    /v3/insee/sirene/unites_legales/{siren}                         API Entreprise unit
GET    /v3/insee/sirene/etablissements/{siret}                         API Entreprise estab.
GET    /api/explore/v2.1/catalog/datasets/api-lannuaire-administration/records   Annuaire
====== =============================================================== =====================

The real registries live on three hosts; their paths do not overlap, so one app serves
them all (base URLs: ``<sandbox>/api-sirene/3.11``, ``<sandbox>`` and ``<sandbox>``).
Each call: transport faults (:class:`FaultWrapper`), the registry's authentication
(Sirene's key header, API Entreprise's bearer token; the Annuaire is open), its quota
(429 + ``Retry-After``), then the answer. Sandbox-only endpoints are under ``/sandbox/``
(:mod:`sandbox.registries.control`). Fidelity table: ``docs/sandbox-registries.md``.
"""

from __future__ import annotations

import asyncio
import random
import re

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relais.identifiers import is_valid_siret
from sandbox.common.clock import AdjustableClock, Clock, system_clock
from sandbox.common.wrapper import FaultWrapper, Sleep
from sandbox.registries import answers
from sandbox.registries.config import RegistriesConfig
from sandbox.registries.control import RegistriesControl
from sandbox.registries.data import COMMUNES, Commune, Unit
from sandbox.registries.quota import RollingQuota
from sandbox.registries.state import RegistriesState

log = structlog.get_logger(__name__)

SIRENE = "/api-sirene/3.11"
ENTREPRISE = "/v3/insee/sirene"
ANNUAIRE = "/api/explore/v2.1/catalog/datasets/api-lannuaire-administration/records"
SIRENE_KEY_HEADER = "X-INSEE-Api-Key-Integration"
ENTREPRISE_PARAMS = ("context", "recipient", "object")
ANNUAIRE_MAX_LIMIT = 100
WHERE_SIRET = re.compile(r'^\s*siret\s*=\s*"(\d{14})"\s*$')
WHERE_COMMUNE = re.compile(
    r'^\s*code_insee_commune\s*=\s*"([0-9AB]{5})"(?:\s+and\s+pivot\s+like\s+"(\w+)")?\s*$',
    re.IGNORECASE,
)


class Registries:
    """The registries' pages over one :class:`RegistriesState`."""

    def __init__(self, state: RegistriesState) -> None:
        self.state = state

    # --- authentication (the FaultWrapper's hook) ---------------------------------------

    async def authenticate(self, request: Request) -> Response | None:
        path = request.url.path
        if path.startswith(SIRENE):
            if request.headers.get(SIRENE_KEY_HEADER) not in self.state.config.sirene_keys:
                return JSONResponse({"message": "Unauthorized", "http_status_code": 401}, 401)
        elif path.startswith(ENTREPRISE):
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            if token not in self.state.config.entreprise_tokens:
                return JSONResponse(
                    answers.entreprise_error(
                        "00101", "Interdit", "Votre token n'est pas valide ou n'est pas renseigné."
                    ),
                    401,
                )
        return None

    def _over_quota(self, registry: str, key: str) -> float | None:
        return self.state.admit(registry, key)

    # --- Sirene --------------------------------------------------------------------------

    def _sirene_quota(self, request: Request) -> Response | None:
        wait = self._over_quota("sirene", request.headers.get(SIRENE_KEY_HEADER, ""))
        if wait is None:
            return None
        limit = self.state.rules["sirene"]
        return JSONResponse(
            {
                "message": f"Rate limit exceeded ! You reach the limit of {limit.limit} requests "
                f"per {limit.window_seconds:g} seconds",
                "http_status_code": 429,
            },
            429,
            headers={"Retry-After": RollingQuota.retry_after_header(wait)},
        )

    def _sirene_number(self, request: Request, parameter: str, digits: int) -> str | Response:
        """The SIREN or SIRET of the path (``parameter``), counted as asked; or the answer
        Sirene gives instead (over its quota: 429; badly formatted number: 400)."""
        refused = self._sirene_quota(request)
        if refused is not None:
            return refused
        number = str(request.path_params[parameter])
        if not re.fullmatch(rf"\d{{{digits}}}", number):
            return JSONResponse(answers.sirene_header(
                400, f"Le paramètre {parameter} {number} n'est pas valide"), 400)
        self.state.asked("sirene", number)
        return number

    async def sirene_unit(self, request: Request) -> Response:
        siren = self._sirene_number(request, "siren", 9)
        if isinstance(siren, Response):
            return siren
        unit = self.state.data.units.get(siren)
        if unit is None:
            return JSONResponse(
                answers.sirene_header(404, f"Aucun élément trouvé pour le siren {siren}"), 404
            )
        if unit.diffusion == "N":
            return JSONResponse(
                answers.sirene_header(403, f"Unité légale non diffusable ({siren})"), 403
            )
        return JSONResponse(answers.sirene_unit(unit))

    async def sirene_establishment(self, request: Request) -> Response:
        siret = self._sirene_number(request, "siret", 14)
        if isinstance(siret, Response):
            return siret
        found = self.state.data.establishments.get(siret)
        if found is None:
            return JSONResponse(
                answers.sirene_header(404, f"Aucun élément trouvé pour le siret {siret}"), 404
            )
        unit, etab = found
        if unit.diffusion == "N":
            return JSONResponse(
                answers.sirene_header(403, f"Établissement non diffusable ({siret})"), 403
            )
        return JSONResponse(answers.sirene_establishment(unit, etab))

    # --- API Entreprise ------------------------------------------------------------------

    def _entreprise_checks(self, request: Request) -> Response | None:
        auth = request.headers.get("Authorization", "")
        wait = self._over_quota("entreprise", auth)
        rule = self.state.rules["entreprise"]
        if wait is not None:
            return JSONResponse(
                answers.entreprise_error(
                    "00429", "Trop de requêtes", "Vous avez effectué trop de requêtes"
                ),
                429,
                headers={
                    "Retry-After": RollingQuota.retry_after_header(wait),
                    "RateLimit-Limit": str(rule.limit),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": RollingQuota.retry_after_header(wait),
                },
            )
        errors = []
        for name in ENTREPRISE_PARAMS:
            value = request.query_params.get(name, "")
            if not value.strip():
                errors.append((name, f"Le paramètre {name} est obligatoire"))
            elif name == "recipient" and not is_valid_siret(value):
                errors.append((name, "Le paramètre recipient n'est pas un numéro de SIRET valide"))
        if errors:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "code": "00210",
                            "title": "Entité non traitable",
                            "detail": detail,
                            "source": {"parameter": name},
                            "meta": {},
                        }
                        for name, detail in errors
                    ]
                },
                422,
            )
        return None

    def _entreprise_not_found(self, kind: str) -> Response:
        return JSONResponse(
            answers.entreprise_error(
                "01003",
                "Entité non trouvée",
                f"Le {kind} indiqué n'existe pas, n'est pas connu ou ne comporte aucune "
                "information pour cet appel.",
            ),
            404,
        )

    def _entreprise_not_diffusible(self) -> Response:
        return JSONResponse(
            answers.entreprise_error(
                "01004", "Indisponible pour raisons légales", "L'entité est non diffusible."
            ),
            451,
        )

    def _entreprise_number(
        self, request: Request, parameter: str, digits: int, code: str
    ) -> str | Response:
        """The SIREN or SIRET of the path (``parameter``), counted as asked; or the answer
        API Entreprise gives instead (refused call, badly formatted number: 422 ``code``)."""
        refused = self._entreprise_checks(request)
        if refused is not None:
            return refused
        number = str(request.path_params[parameter])
        if not re.fullmatch(rf"\d{{{digits}}}", number):
            return JSONResponse(
                answers.entreprise_error(
                    code,
                    "Entité non traitable",
                    f"Le {parameter} n'est pas correctement formaté",
                    source={"parameter": parameter},
                ),
                422,
            )
        self.state.asked("entreprise", number)
        return number

    async def entreprise_unit(self, request: Request) -> Response:
        siren = self._entreprise_number(request, "siren", 9, "00301")
        if isinstance(siren, Response):
            return siren
        unit = self.state.data.units.get(siren)
        if unit is None:
            return self._entreprise_not_found("siren")
        if unit.diffusion == "N":
            return self._entreprise_not_diffusible()
        return JSONResponse(answers.entreprise_unit(unit))

    async def entreprise_establishment(self, request: Request) -> Response:
        siret = self._entreprise_number(request, "siret", 14, "00302")
        if isinstance(siret, Response):
            return siret
        found = self.state.data.establishments.get(siret)
        if found is None:
            return self._entreprise_not_found("siret")
        unit, etab = found
        if unit.diffusion == "N":
            return self._entreprise_not_diffusible()
        return JSONResponse(answers.entreprise_establishment(unit, etab))

    # --- Annuaire ------------------------------------------------------------------------

    async def annuaire_records(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = self._over_quota("annuaire", client)
        if wait is not None:
            return JSONResponse(
                {"error_code": "TooManyRequests", "message": "Too many requests"},
                429,
                headers={"Retry-After": RollingQuota.retry_after_header(wait)},
            )
        where = request.query_params.get("where", "")
        raw_limit = request.query_params.get("limit", "10")
        if not raw_limit.isdigit() or not 0 <= int(raw_limit) <= ANNUAIRE_MAX_LIMIT:
            return _ods_error(f"Invalid value for limit: {raw_limit} (0 to {ANNUAIRE_MAX_LIMIT})")
        limit = int(raw_limit)
        rows = []
        if match := WHERE_SIRET.match(where):
            siret = match.group(1)
            self.state.asked("annuaire", siret)
            rows = [
                answers.annuaire_mairie(c, u)
                for c, u in self._mairies()
                if u.head_office.siret == siret
            ]
        elif match := WHERE_COMMUNE.match(where):
            code, pivot = match.group(1), (match.group(2) or "").lower()
            self.state.asked("annuaire", code)
            rows = [
                answers.annuaire_mairie(c, u)
                for c, u in self._mairies()
                if c.code == code and pivot in ("", "mairie")
            ]
        else:
            return _ods_error(f"ODSQL query is malformed or not supported here: {where[:200]}")
        return JSONResponse({"total_count": len(rows), "results": rows[:limit]})

    def _mairies(self) -> list[tuple[Commune, Unit]]:
        return [(c, self.state.data.mairies[c.code]) for c in COMMUNES]


def _ods_error(message: str) -> Response:
    return JSONResponse({"error_code": "ODSQLError", "message": message}, 400)


def create_registries_sandbox(
    config: RegistriesConfig | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Starlette:
    config = config or RegistriesConfig()
    config.check()
    state = RegistriesState(
        config,
        clock or AdjustableClock(system_clock),
        rng or random.Random(config.seed),  # noqa: S311 - simulation
    )
    pages = Registries(state)
    wrapper = FaultWrapper(state, "registries", sleep=sleep, authenticate=pages.authenticate)
    routes = [
        Route(f"{SIRENE}/siren/{{siren}}", wrapper.wrap(pages.sirene_unit), methods=["GET"]),
        Route(
            f"{SIRENE}/siret/{{siret}}", wrapper.wrap(pages.sirene_establishment), methods=["GET"]
        ),
        Route(
            f"{ENTREPRISE}/unites_legales/{{siren}}",
            wrapper.wrap(pages.entreprise_unit),
            methods=["GET"],
        ),
        Route(
            f"{ENTREPRISE}/etablissements/{{siret}}",
            wrapper.wrap(pages.entreprise_establishment),
            methods=["GET"],
        ),
        Route(ANNUAIRE, wrapper.wrap(pages.annuaire_records), methods=["GET"]),
        *RegistriesControl(state).routes(),
    ]
    app = Starlette(routes=routes)
    app.state.registries = state
    return app
