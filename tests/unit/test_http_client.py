"""The shared client factory and registry: credentials, timeouts, redirects, reuse, capped reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from connectors.http.client import PartnerTimeouts, account_client, build_partner_client
from connectors.http.limits import read_capped
from connectors.http.registry import PartnerConnectors
from relais.errors import (
    ConfigurationError,
    PartnerAuthError,
    PartnerReplyTooLargeError,
    PartnerTimeoutError,
)
from relais.members.model import Member, PartnerAccount
from sandbox.common.tls import ensure_tls_material

URL = "https://api.partner.example"
SIREN = "210600235"


class Recorder:
    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body,
                              headers={"Location": f"{URL}/login"} if self.status == 302 else {})


def _member(**accounts: PartnerAccount) -> Member:
    return Member(siren=SIREN, name="Commune", department="006", token_sha256="0" * 64,
                  accounts=accounts)


async def test_an_api_key_goes_in_the_partners_header_and_a_token_as_bearer() -> None:
    seen = Recorder()
    account = PartnerAccount(url=URL, api_key_env="INSEE_KEY", token_env="API_TOKEN")
    client = account_client(account, partner="sirene", member=SIREN,
                            environ={"INSEE_KEY": "k-123", "API_TOKEN": "t-456"},
                            api_key_header="X-INSEE-Api-Key-Integration",
                            transport=httpx.MockTransport(seen))
    async with client:
        await client.get("/entreprises/sirene/V3.11/siren/210600235")
    headers = seen.requests[0].headers
    assert headers["X-INSEE-Api-Key-Integration"] == "k-123"
    assert headers["Authorization"] == "Bearer t-456"
    assert str(seen.requests[0].url).startswith(URL)


async def test_basic_is_sent_only_when_a_password_variable_is_named() -> None:
    seen = Recorder()
    with_basic = PartnerAccount(url=URL, login="mairie", password_env="PW")
    async with account_client(with_basic, partner="archive", member=SIREN,
                              environ={"PW": "secret"},
                              transport=httpx.MockTransport(seen)) as client:
        await client.get("/")
    async with account_client(PartnerAccount(url=URL, login="mairie"), partner="archive",
                              member=SIREN, environ={},
                              transport=httpx.MockTransport(seen)) as client:
        await client.get("/")
    assert seen.requests[0].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in seen.requests[1].headers


def test_an_unset_variable_is_a_configuration_error_naming_it() -> None:
    account = PartnerAccount(url=URL, token_env="API_ENTREPRISE_TOKEN")
    with pytest.raises(ConfigurationError) as caught:
        account_client(account, partner="entreprise", member=SIREN, environ={})
    assert "API_ENTREPRISE_TOKEN" in caught.value.message and SIREN in caught.value.message
    assert caught.value.retriable is False


def test_an_api_key_without_a_header_is_a_configuration_error() -> None:
    account = PartnerAccount(url=URL, api_key_env="KEY")
    with pytest.raises(ConfigurationError, match="api_key_header"):
        account_client(account, partner="registry", member=SIREN, environ={"KEY": "v"})


async def test_the_account_option_names_the_api_key_header() -> None:
    seen = Recorder()
    account = PartnerAccount(url=URL, api_key_env="KEY", options={"api_key_header": "X-Key"})
    async with account_client(account, partner="registry", member=SIREN, environ={"KEY": "v"},
                              api_key_header="X-Default",
                              transport=httpx.MockTransport(seen)) as client:
        await client.get("/")
    assert seen.requests[0].headers["X-Key"] == "v" and "X-Default" not in seen.requests[0].headers


async def test_timeouts_are_per_partner_and_per_account_option() -> None:
    account = PartnerAccount(url=URL, options={"timeout.read": "120"})
    defaults = PartnerTimeouts(connect=3, read=20, write=25, pool=4)
    async with account_client(account, partner="archive", member=SIREN, environ={},
                              timeouts=defaults,
                              transport=httpx.MockTransport(Recorder())) as client:
        assert client.timeout == httpx.Timeout(connect=3, read=120, write=25, pool=4)
        assert client.follow_redirects is False
    bad = PartnerAccount(url=URL, options={"timeout.connect": "soon"})
    with pytest.raises(ConfigurationError, match=r"timeout\.connect"):
        account_client(bad, partner="archive", member=SIREN, environ={})


async def test_redirects_are_not_followed() -> None:
    seen = Recorder(status=302)
    async with build_partner_client(URL, partner="p",
                                    transport=httpx.MockTransport(seen)) as client:
        response = await client.get("/a")
    assert response.status_code == 302 and len(seen.requests) == 1


def test_a_wrong_key_password_is_an_auth_error_naming_the_partner(tmp_path: Path) -> None:
    material = ensure_tls_material(tmp_path, ["m1"])
    mine = material.client("m1")
    with pytest.raises(PartnerAuthError) as caught:
        build_partner_client(URL, partner="archive", label="SEDA archive", member=SIREN,
                             cert_file=mine.cert_file, key_file=mine.key_file,
                             key_password="wrong", ca_file=material.ca_file)
    assert caught.value.partner == "archive"
    assert "SEDA archive" in caught.value.message and URL in caught.value.message


# -- the registry ---------------------------------------------------------------------------


class FakeConnector:
    def __init__(self, client: httpx.AsyncClient, account: PartnerAccount) -> None:
        self.client = client
        self.account = account


async def test_the_registry_builds_on_first_use_reuses_and_closes() -> None:
    built: list[str] = []

    def factory(
        client: httpx.AsyncClient, account: PartnerAccount, member: Member
    ) -> FakeConnector:
        built.append(member.siren)
        return FakeConnector(client, account)

    registry = PartnerConnectors("archive", factory,
                                 transport=httpx.MockTransport(Recorder()), environ={})
    member = _member(archive=PartnerAccount(url=URL, options={"tenant": "1"}))
    first = registry.for_member(member)
    assert registry.for_member(member) is first and built == [SIREN]
    moved = _member(archive=PartnerAccount(url=URL, options={"tenant": "2"}))
    assert registry.for_member(moved) is not first and len(registry) == 2
    await registry.aclose()
    assert first.client.is_closed and len(registry) == 0


def test_the_registry_refuses_a_member_without_an_account() -> None:
    registry = PartnerConnectors("parapheur", lambda c, a, m: FakeConnector(c, a),
                                 label="i-Parapheur", environ={})
    with pytest.raises(ConfigurationError, match="i-Parapheur"):
        registry.for_member(_member(tdt=PartnerAccount(url=URL)))


# -- capped reads ---------------------------------------------------------------------------


async def _streamed(chunks: list[bytes], delay: float = 0.0,
                    headers: dict[str, str] | None = None) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            await asyncio.sleep(delay)
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, content=body())

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return await client.send(client.build_request("GET", URL), stream=True)


async def test_a_body_under_the_cap_is_read_whole() -> None:
    response = await _streamed([b"ab", b"cd"])
    assert await read_capped(response, 4, partner="p", operation="o", deadline=5) == b"abcd"


async def test_a_body_over_the_cap_stops_the_read() -> None:
    response = await _streamed([b"ab", b"cd", b"e"])
    with pytest.raises(PartnerReplyTooLargeError) as caught:
        await read_capped(response, 4, partner="registry", operation="o", deadline=5)
    assert caught.value.retriable is False and caught.value.partner == "registry"


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    response = await _streamed([b"x"], headers={"Content-Length": "999999"})
    with pytest.raises(PartnerReplyTooLargeError, match="declared 999999"):
        await read_capped(response, 10, partner="p", operation="o", deadline=5)


async def test_a_body_slower_than_the_deadline_is_a_timeout() -> None:
    response = await _streamed([b"a", b"b"], delay=0.2)
    with pytest.raises(PartnerTimeoutError):
        await read_capped(response, 100, partner="p", operation="o", deadline=0.05)
