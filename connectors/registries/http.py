"""The registries' httpx client and a bounded JSON read, on the shared ``connectors.http``.

:func:`build_registry_client` is the shared partner client factory with the registries'
defaults (short timeouts, JSON); tests pass an ``httpx.MockTransport`` (or an
``httpx.ASGITransport`` to the sandbox). Answers are read under :data:`MAX_ANSWER_BYTES`
and :data:`READ_DEADLINE` (:func:`connectors.http.limits.read_capped`): a unit or an
establishment is a few kilobytes, an Annuaire page of 20 offices a few dozen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from connectors.http.client import PartnerTimeouts, build_partner_client
from connectors.http.errors import map_transport_errors
from connectors.http.limits import read_capped
from relais.errors import PartnerReplyError

MAX_ANSWER_BYTES = 512 * 1024
READ_DEADLINE = 15.0
DEFAULT_TIMEOUTS = PartnerTimeouts(connect=5.0, read=10.0, write=10.0, pool=5.0)


def build_registry_client(
    base_url: str,
    *,
    registry: str = "registry",
    headers: dict[str, str] | None = None,
    timeout: float | httpx.Timeout | PartnerTimeouts = DEFAULT_TIMEOUTS,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    key_password: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one registry (credential ``headers``); the caller closes
    it. ``ca_file`` and the client certificate are for the sandbox served over TLS."""
    return build_partner_client(
        base_url,
        partner=registry,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=timeout,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        key_password=key_password,
        transport=transport,
    )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: object  # decoded JSON, or None when the body was empty or not JSON

    def header(self, name: str) -> str | None:
        value: str | None = self.headers.get(name)
        return value


async def get_json(
    client: httpx.AsyncClient,
    registry: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    what: str,
    limit: int = MAX_ANSWER_BYTES,
) -> Answer:
    """GET ``path`` and read at most ``limit`` bytes of JSON (any status)."""
    operation = f"{registry} {what}"
    with map_transport_errors(registry, operation):
        request = client.build_request("GET", path, params=params)
        response = await client.send(request, stream=True)
        try:
            raw = await read_capped(
                response, limit, partner=registry, operation=operation, deadline=READ_DEADLINE
            )
        finally:
            await response.aclose()
    body: object = None
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            if 200 <= response.status_code < 300:
                raise PartnerReplyError(
                    f"{registry}: {what} answered HTTP {response.status_code} without JSON",
                    partner=registry,
                    status=response.status_code,
                ) from None
    return Answer(response.status_code, response.headers, body)


def as_dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
