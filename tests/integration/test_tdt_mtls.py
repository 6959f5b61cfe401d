"""TLS client certificates for real: the connector against the HTTPS sandbox TdT on loopback.

The sandbox requires a client certificate of its throwaway CA (``ssl.CERT_REQUIRED``)
and identifies the account by the certificate's CN. Each refusal must reach the
stages as the non-retriable ``PartnerAuthError`` naming the member and the TdT.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.tdt import ActeForm, UploadFile
from connectors.tdt.registry import MAX_CONNECTIONS, TdtConnectors
from relais.documents import sample_pdf
from relais.errors import ConfigurationError, PartnerAuthError, PartnerTransientError
from relais.members.model import Member, TdtSettings
from sandbox.common.tls import ensure_tls_material, make_foreign_client
from sandbox.tdt.config import SandboxAccount, SandboxConfig
from sandbox.tdt.server import RunningSandbox, running_tdt_sandbox, sandbox_tls

SIREN = "210600235"
OTHER_SIREN = "217100072"
KEY_PASSWORD_ENV = "TEST_TDT_KEY_PASSWORD"
BASIC_PASSWORD_ENV = "TEST_TDT_PASSWORD"
CONFIG = SandboxConfig(
    accounts=(
        SandboxAccount(login=SIREN, password="basic-secret", siren=SIREN, department="006"),
        SandboxAccount(login=OTHER_SIREN, password="other", siren=OTHER_SIREN, department="071"),
    )
)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    tls = sandbox_tls(tmp_path / "tls", CONFIG)
    async with running_tdt_sandbox(CONFIG, tls=tls) as running:
        yield running


def member(
    url: str,
    *,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    key_password_env: str | None = KEY_PASSWORD_ENV,
    password_env: str = "",
) -> Member:
    return Member(
        siren=SIREN,
        name="Commune de test",
        department="006",
        token_sha256="0" * 64,
        tdt=TdtSettings(
            url=url,
            login=SIREN,
            password_env=password_env,
            cert_file=str(cert) if cert else None,
            key_file=str(key) if key else None,
            key_password_env=key_password_env,
            ca_file=str(ca) if ca else None,
        ),
    )


def assert_auth_error(error: BaseException, url: str, *words: str) -> None:
    assert isinstance(error, PartnerAuthError), repr(error)
    assert error.retriable is False
    assert error.code == "partner_auth"
    assert f"member {SIREN}" in error.message
    assert url in error.message
    for word in words:
        assert word in error.message, error.message


async def test_the_right_certificate_gets_through_without_basic(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    connectors = TdtConnectors(timeout=5, environ={KEY_PASSWORD_ENV: material.key_password})
    try:
        connector = connectors.for_member(
            member(sandbox.url, cert=mine.cert_file, key=mine.key_file, ca=material.ca_file)
        )
        classification = await connector.fetch_classification()
    finally:
        await connectors.aclose()
    assert sandbox.url.startswith("https://127.0.0.1:")
    assert b"RetourClassification" in classification
    stats = sandbox.state.stats()
    assert stats["members"][SIREN]["classification_fetches"] == 1
    assert stats["members"][OTHER_SIREN]["classification_fetches"] == 0


async def test_the_certificate_with_basic_of_the_same_account_gets_through(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    environ = {KEY_PASSWORD_ENV: material.key_password, BASIC_PASSWORD_ENV: "basic-secret"}
    connectors = TdtConnectors(timeout=5, environ=environ)
    try:
        connector = connectors.for_member(
            member(sandbox.url, cert=mine.cert_file, key=mine.key_file, ca=material.ca_file,
                   password_env=BASIC_PASSWORD_ENV)
        )
        assert b"RetourClassification" in await connector.fetch_classification()
    finally:
        await connectors.aclose()


async def test_a_missing_certificate_is_a_non_retriable_auth_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    connectors = TdtConnectors(timeout=5, environ={})
    try:
        connector = connectors.for_member(
            member(sandbox.url, cert=None, key=None, ca=material.ca_file, key_password_env=None)
        )
        with pytest.raises(PartnerAuthError) as caught:
            await connector.fetch_classification()
    finally:
        await connectors.aclose()
    assert_auth_error(caught.value, sandbox.url, "refused the client certificate")


async def test_a_certificate_from_another_ca_is_a_non_retriable_auth_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    foreign = make_foreign_client(tmp_path / "foreign", SIREN, key_password="foreign-pw")
    connectors = TdtConnectors(timeout=5, environ={KEY_PASSWORD_ENV: "foreign-pw"})
    try:
        connector = connectors.for_member(
            member(sandbox.url, cert=foreign.cert_file, key=foreign.key_file,
                   ca=material.ca_file)
        )
        with pytest.raises(PartnerAuthError) as caught:
            await connector.fetch_classification()
    finally:
        await connectors.aclose()
    assert_auth_error(caught.value, sandbox.url, "refused the client certificate")
    assert sandbox.state.stats()["classification_fetches"] == 0


async def test_a_wrong_key_password_is_a_non_retriable_auth_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    connectors = TdtConnectors(timeout=5, environ={KEY_PASSWORD_ENV: "not-the-password"})
    try:
        with pytest.raises(PartnerAuthError) as caught:
            connectors.for_member(
                member(sandbox.url, cert=mine.cert_file, key=mine.key_file, ca=material.ca_file)
            )
    finally:
        await connectors.aclose()
    assert_auth_error(caught.value, sandbox.url, "password", str(mine.key_file))
    assert "not-the-password" not in caught.value.message


async def test_an_unset_key_password_variable_is_a_configuration_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    connectors = TdtConnectors(timeout=5, environ={})
    with pytest.raises(ConfigurationError) as caught:
        connectors.for_member(
            member(sandbox.url, cert=mine.cert_file, key=mine.key_file, ca=material.ca_file)
        )
    assert caught.value.retriable is False
    assert SIREN in caught.value.message
    assert KEY_PASSWORD_ENV in caught.value.message


async def test_an_untrusted_server_certificate_is_a_non_retriable_auth_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    connectors = TdtConnectors(timeout=5, environ={KEY_PASSWORD_ENV: material.key_password})
    try:
        connector = connectors.for_member(
            member(sandbox.url, cert=mine.cert_file, key=mine.key_file, ca=None)
        )
        with pytest.raises(PartnerAuthError) as caught:
            await connector.fetch_classification()
    finally:
        await connectors.aclose()
    assert_auth_error(caught.value, sandbox.url, "server certificate is not trusted")


async def test_a_tdt_that_is_down_stays_a_retriable_error(tmp_path: Path) -> None:
    """The refusal check must not turn a network failure into an auth error."""
    tls = sandbox_tls(tmp_path / "tls", CONFIG)
    async with running_tdt_sandbox(CONFIG, tls=tls) as stopped:
        url = stopped.url  # a port nobody listens on once the block is left
    material = tls.material
    mine = material.client(SIREN)
    connectors = TdtConnectors(timeout=5, environ={KEY_PASSWORD_ENV: material.key_password})
    try:
        connector = connectors.for_member(
            member(url, cert=mine.cert_file, key=mine.key_file, ca=material.ca_file)
        )
        with pytest.raises(PartnerTransientError) as caught:
            await connector.fetch_classification()
    finally:
        await connectors.aclose()
    assert caught.value.retriable is True
    assert not isinstance(caught.value, PartnerAuthError)


def _context(material_ca: Path, cert: Path, key: Path, password: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(material_ca))
    context.load_cert_chain(str(cert), str(key), password=lambda: password or "")
    return context


async def test_the_gate_maps_certificates_to_accounts(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    as_member = _context(material.ca_file, mine.cert_file, mine.key_file, material.key_password)
    operator = material.operator
    as_operator = _context(material.ca_file, operator.cert_file, operator.key_file, None)
    path = "/modules/actes/actes_classification_fetch.php?api=1"
    async with httpx.AsyncClient(base_url=sandbox.url, verify=as_member) as client:
        other_login = await client.get(path, auth=(OTHER_SIREN, "other"))
        assert other_login.status_code == 403
        assert "login ne correspond pas" in other_login.text
    async with httpx.AsyncClient(base_url=sandbox.url, verify=as_operator) as client:
        assert (await client.get("/sandbox/stats")).status_code == 200
        refused = await client.get(path)
        assert refused.status_code == 403
        assert refused.text.startswith("KO\n")


def test_tls_material_is_made_once_and_completed_for_new_accounts(tmp_path: Path) -> None:
    first = ensure_tls_material(tmp_path, ["a1"])
    ca, server, client = (first.ca_file.read_bytes(), first.server_cert.read_bytes(),
                          first.client("a1").cert_file.read_bytes())
    second = ensure_tls_material(tmp_path, ["a1", "b2"])
    assert second.ca_file.read_bytes() == ca
    assert second.server_cert.read_bytes() == server
    assert second.client("a1").cert_file.read_bytes() == client
    assert second.client("b2").cert_file.exists()
    assert second.key_password == first.key_password
    assert b"ENCRYPTED" in second.client("b2").key_file.read_bytes()
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigurationError):
        ensure_tls_material(tmp_path, ["../escape"])


async def test_with_optional_client_certificates_basic_alone_gets_through(
    tmp_path: Path,
) -> None:
    tls = sandbox_tls(tmp_path / "tls", CONFIG, require_client_certificate=False)
    material = tls.material
    async with running_tdt_sandbox(CONFIG, tls=tls) as running:
        connectors = TdtConnectors(timeout=5, environ={BASIC_PASSWORD_ENV: "basic-secret"})
        try:
            connector = connectors.for_member(
                member(running.url, cert=None, key=None, ca=material.ca_file,
                       key_password_env=None, password_env=BASIC_PASSWORD_ENV)
            )
            assert b"RetourClassification" in await connector.fetch_classification()
        finally:
            await connectors.aclose()
        foreign = make_foreign_client(tmp_path / "foreign", SIREN)
        connectors = TdtConnectors(timeout=5, environ={BASIC_PASSWORD_ENV: "basic-secret"})
        try:
            connector = connectors.for_member(
                member(running.url, cert=foreign.cert_file, key=foreign.key_file,
                       ca=material.ca_file, key_password_env=None,
                       password_env=BASIC_PASSWORD_ENV)
            )
            with pytest.raises(PartnerAuthError) as caught:
                await connector.fetch_classification()
        finally:
            await connectors.aclose()
    assert_auth_error(caught.value, running.url, "refused the client certificate")


async def test_a_burst_of_one_accounts_actes_reuses_a_few_connections(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve actes posted at once, then their statuses: one TLS handshake per kept
    connection (MAX_CONNECTIONS), not one per call."""
    handshakes = 0
    wrap_bio = ssl.SSLContext.wrap_bio

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        nonlocal handshakes
        if not kwargs.get("server_side", args[2] if len(args) > 2 else False):
            handshakes += 1
        return wrap_bio(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "wrap_bio", counting)
    material = ensure_tls_material(tmp_path / "tls", [])
    mine = material.client(SIREN)
    connectors = TdtConnectors(timeout=10, environ={KEY_PASSWORD_ENV: material.key_password})
    pdf = sample_pdf("Deliberation")
    try:
        connector = connectors.for_member(
            member(sandbox.url, cert=mine.cert_file, key=mine.key_file, ca=material.ca_file)
        )
        posted = await asyncio.gather(*(
            connector.post_acte(
                ActeForm(nature_code=1, number=f"D2024_{n:03d}", subject="Deliberation",
                         decision_date=date(2024, 2, 28), classification=(7, 1),
                         type_acte="99_DE"),
                [UploadFile("deliberation.pdf", pdf)],
            ) for n in range(12)
        ))
        statuses = await asyncio.gather(*(connector.get_status(p.transaction_id)
                                          for p in posted))
    finally:
        await connectors.aclose()
    assert len({p.transaction_id for p in posted}) == 12
    assert all(s.status >= 1 for s in statuses)
    assert 1 <= handshakes <= MAX_CONNECTIONS
    assert sandbox.state.stats()["members"][SIREN]["transactions_created"] == 12
