"""TLS client certificates without sockets: settings rules, key loading, refusal detection,
and the sandbox's certificate gate called as a plain ASGI app."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.tdt.client import build_tdt_client
from connectors.tdt.errors import error_class_for
from connectors.tdt.registry import TdtConnectors
from connectors.tdt.tls import TlsClientAuthError, certificate_refusal
from relais.errors import ConfigurationError, PartnerAuthError
from relais.members.model import Member, TdtSettings, tdt_settings_reasons
from sandbox.common.mtls import BasicAccount, ClientCertificateGate, PeerCertificates
from sandbox.common.tls import ensure_tls_material

URL = "https://tdt.example.test"


def test_tdt_settings_refuse_a_password_given_instead_of_a_variable_name() -> None:
    tdt = TdtSettings(url=URL, login="x", password_env="s3cr3t pass!", key_password_env="a b")
    reasons = tdt_settings_reasons(tdt)
    assert sorted(r.code for r in reasons) == ["invalid_env_name", "invalid_env_name",
                                               "requires_cert"]
    assert {r.field for r in reasons} == {"tdt.password_env", "tdt.key_password_env"}
    assert all("s3cr3t" not in r.message for r in reasons)


def test_tdt_settings_need_a_certificate_for_a_key() -> None:
    assert [r.code for r in tdt_settings_reasons(
        TdtSettings(url=URL, login="x", password_env="", key_file="/k.pem"))] == ["requires_cert"]
    good = TdtSettings(url=URL, login="x", password_env="", cert_file="/c.pem",
                       key_file="/k.pem", key_password_env="KEY_PW", ca_file="/ca.pem")
    assert tdt_settings_reasons(good) == []


def test_a_wrong_key_password_is_an_auth_error_naming_member_and_tdt(tmp_path: Path) -> None:
    material = ensure_tls_material(tmp_path, ["m1"])
    mine = material.client("m1")
    with pytest.raises(PartnerAuthError) as caught:
        build_tdt_client(URL, cert_file=mine.cert_file, key_file=mine.key_file,
                         key_password="wrong", ca_file=material.ca_file, member="210600235")
    assert caught.value.retriable is False
    assert "member 210600235" in caught.value.message
    assert URL in caught.value.message


def test_an_encrypted_key_without_password_is_a_configuration_error(tmp_path: Path) -> None:
    material = ensure_tls_material(tmp_path, ["m1"])
    mine = material.client("m1")
    with pytest.raises(ConfigurationError, match="encrypted"):
        build_tdt_client(URL, cert_file=mine.cert_file, key_file=mine.key_file, member="m1")


async def test_the_right_key_password_builds_a_client(tmp_path: Path) -> None:
    material = ensure_tls_material(tmp_path, ["m1"])
    mine = material.client("m1")
    client = build_tdt_client(URL, cert_file=mine.cert_file, key_file=mine.key_file,
                              key_password=material.key_password, ca_file=material.ca_file)
    await client.aclose()


def test_the_registry_names_the_unset_key_password_variable(tmp_path: Path) -> None:
    material = ensure_tls_material(tmp_path, ["m1"])
    mine = material.client("m1")
    member = Member(siren="210600235", name="n", department="006", token_sha256="0" * 64,
                    tdt=TdtSettings(url=URL, login="m1", password_env="",
                                    cert_file=str(mine.cert_file), key_file=str(mine.key_file),
                                    key_password_env="MISSING_KEY_PW"))
    with pytest.raises(ConfigurationError) as caught:
        TdtConnectors(environ={}).for_member(member)
    assert "210600235" in caught.value.message
    assert "MISSING_KEY_PW" in caught.value.message


def test_certificate_alerts_in_an_exception_chain_are_refusals() -> None:
    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert")
    alert.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    wrapped = httpx.ReadError("read failed")
    wrapped.__cause__ = alert
    assert certificate_refusal(wrapped) is not None
    reset = httpx.ReadError("read failed")
    reset.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert certificate_refusal(reset) is None


def test_the_transport_table_maps_a_refused_certificate_to_partner_auth() -> None:
    assert error_class_for(TlsClientAuthError) is PartnerAuthError


# -- the sandbox's gate, as an ASGI app ---------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"OK\n"})


async def call(gate: ClientCertificateGate, path: str,
               headers: list[tuple[bytes, bytes]] | None = None) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "scheme": "https", "path": path, "client": ("127.0.0.1", 5000),
             "headers": headers or []}
    await gate(scope, receive, send)
    status: int = sent[0]["status"]
    return status


def peer(cn: str) -> dict[str, Any]:
    return {"subject": ((("organizationName", "x"),), (("commonName", cn),))}


async def test_the_gate_adds_the_accounts_basic_credentials() -> None:
    app, registry = Recorder(), PeerCertificates()
    gate = ClientCertificateGate(app, registry, {"m1": BasicAccount("m1", "pw")})
    registry.record(("127.0.0.1", 5000), peer("m1"))
    assert await call(gate, "/modules/actes/x.php") == 200
    header = dict(app.scopes[0]["headers"])[b"authorization"]
    assert base64.b64decode(header.split()[1]) == b"m1:pw"


async def test_the_gate_refuses_another_accounts_login_and_unknown_certificates() -> None:
    app, registry = Recorder(), PeerCertificates()
    gate = ClientCertificateGate(app, registry, {"m1": BasicAccount("m1", "pw")})
    registry.record(("127.0.0.1", 5000), peer("m1"))
    other = base64.b64encode(b"m2:pw2")
    assert await call(gate, "/a.php", [(b"authorization", b"Basic " + other)]) == 403
    registry.record(("127.0.0.1", 5000), peer("sandbox-operator"))
    assert await call(gate, "/a.php") == 403
    assert await call(gate, "/sandbox/stats") == 200
    registry.forget(("127.0.0.1", 5000))
    assert await call(gate, "/a.php") == 403
    assert len(app.scopes) == 1


# -- relais members add: the TLS options are checked before anything is published --------------


@pytest.fixture
def no_log_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI would point the logs at the runner's captured stream, closed afterwards."""
    monkeypatch.setattr("hub.cli.common.configure_logging", lambda *args, **kwargs: None)


@pytest.mark.usefixtures("no_log_setup")
def test_members_add_refuses_a_pasted_key_password_without_echoing_it() -> None:
    from typer.testing import CliRunner

    from hub.cli.main import app

    result = CliRunner().invoke(app, [
        "members", "add", "210600235", "--name", "Commune", "--department", "006",
        "--tdt-url", "https://tdt.example.test", "--tdt-login", "x",
        "--tdt-cert", "/etc/relais/c.pem", "--tdt-key-password-env", "hunter2 secret!",
    ])
    assert result.exit_code == 1
    assert "tdt.key_password_env" in result.output
    assert "hunter2" not in result.output


@pytest.mark.usefixtures("no_log_setup")
def test_members_add_wants_a_tdt_url_for_a_certificate() -> None:
    from typer.testing import CliRunner

    from hub.cli.main import app

    result = CliRunner().invoke(app, [
        "members", "add", "210600235", "--name", "Commune", "--department", "006",
        "--tdt-cert", "/etc/relais/c.pem",
    ])
    assert result.exit_code == 1
    assert "--tdt-url" in result.output


@pytest.mark.usefixtures("no_log_setup")
def test_members_add_refuses_a_pasted_api_key_and_a_duplicate_tdt_account() -> None:
    from typer.testing import CliRunner

    from hub.cli.main import app

    base = ["members", "add", "210600235", "--name", "Commune", "--department", "006"]
    pasted = CliRunner().invoke(app, [
        *base, "--account", "sirene=https://api.insee.fr/entreprises/sirene",
        "--account-option", "sirene.api_key_env=9f2c-secret-key value",
    ])
    assert pasted.exit_code == 1
    assert "sirene.api_key_env" in pasted.output and "9f2c" not in pasted.output
    twice = CliRunner().invoke(app, [
        *base, "--tdt-url", URL, "--account", f"tdt={URL}",
    ])
    assert twice.exit_code == 1 and "twice" in twice.output
    orphan = CliRunner().invoke(app, [*base, "--account-option", "archive.tenant=1"])
    assert orphan.exit_code == 1 and "--account archive=url" in orphan.output
