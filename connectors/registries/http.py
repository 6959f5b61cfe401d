"""The registries' httpx client and a bounded JSON read.

Client creation lives in this one function until the shared ``connectors/http`` factory
exists; tests pass an ``httpx.MockTransport`` (or an ``httpx.ASGITransport`` to a sandbox).
Answers are read in a stream and refused past :data:`MAX_ANSWER_BYTES`: a unit or an
establishment is a few kilobytes, an Annuaire page of 20 offices a few dozen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from connectors.registries.errors import transport_errors
from relais.errors import PartnerReplyError, PartnerReplyTooLargeError

MAX_ANSWER_BYTES = 512 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def build_registry_client(
    base_url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one registry; the caller closes it."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=timeout,
        transport=transport,
        follow_redirects=False,
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
    with transport_errors(registry, what):
        async with client.stream("GET", path, params=params) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise PartnerReplyTooLargeError(
                        f"{registry}: {what} answered more than {limit} bytes",
                        partner=registry,
                        status=response.status_code,
                    )
                chunks.append(chunk)
    raw = b"".join(chunks)
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
