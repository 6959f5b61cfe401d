"""A TdT account's calls share a few kept-alive connections: bounded calls in flight."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from connectors.http.client import build_partner_client
from connectors.tdt import S2lowConnector
from connectors.tdt.registry import MAX_CONNECTIONS

BASE = "https://tdt.example.org"


@pytest.mark.parametrize(("max_in_flight", "most_expected"), [(2, 2), (None, 8)])
async def test_calls_beyond_the_cap_wait_their_turn(
    max_in_flight: int | None, most_expected: int
) -> None:
    """With a cap, at most that many calls are in flight; without one, all go at once."""
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, content=b"OK\n1\n")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with client:
        connector = S2lowConnector(client, base_url=BASE, max_in_flight=max_in_flight)
        answers = await asyncio.gather(*(connector.get_status(str(n)) for n in range(8)))
    assert [a.status for a in answers] == [1] * 8
    assert most == most_expected


async def test_the_partner_client_keeps_as_many_connections_as_its_cap() -> None:
    capped = build_partner_client(BASE, partner="tdt", max_connections=MAX_CONNECTIONS)
    default = build_partner_client(BASE, partner="tdt")
    async with capped, default:
        pool = capped._transport._inner._pool  # type: ignore[attr-defined]
        assert (pool._max_connections, pool._max_keepalive_connections) == (MAX_CONNECTIONS,
                                                                            MAX_CONNECTIONS)
        pool = default._transport._inner._pool  # type: ignore[attr-defined]
        assert (pool._max_connections, pool._max_keepalive_connections) == (100, 20)
