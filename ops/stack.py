"""The hub's processes on one machine, as the demo and the integration tests run them:
a sandbox TdT configured with an account per member, the worker and the API.

The sandbox serves HTTPS and requires a TLS client certificate, as S²LOW does: its
throwaway CA, server certificate and one client certificate per member live in
``<data_dir>/sandbox/tls`` (:func:`sandbox_tls_dir`); each member is registered with
its certificate, its encrypted key, the CA and the name of the variable holding the
key's password (:data:`SANDBOX_KEY_PASSWORD_ENV`, set in the processes' environment).
The control endpoints (``/sandbox/…``) take the sandbox's operator certificate:
:func:`sandbox_control_client`. ``tls=False`` keeps everything on plain HTTP.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from ops.members import Registration, new_member
from ops.processes import ManagedProcess
from relais.errors import InfrastructureError
from relais.kafka.security import hub_security
from relais.logs import READY_LINE
from relais.members.model import PartnerAccount, TdtSettings
from relais.settings import Settings
from sandbox.common.tls import TlsMaterial, ensure_tls_material
from sandbox.registries.config import DEFAULT_SIRENE_KEY

SANDBOX_PASSWORD_ENV = "RELAIS_SANDBOX_TDT_PASSWORD"
SANDBOX_PASSWORD = "sandbox-password"  # the loopback sandbox's demo secret
SANDBOX_KEY_PASSWORD_ENV = "RELAIS_SANDBOX_TDT_KEY_PASSWORD"
"""Holds the password of the sandbox members' client keys (read from the TLS dir)."""


def sandbox_tls_dir(settings: Settings) -> Path:
    """Where the sandbox's throwaway CA and certificates live (``relais sandbox``'s default)."""
    return Path(settings.data_dir) / "sandbox" / "tls"


def sandbox_tls_material(settings: Settings, logins: list[str] | None = None) -> TlsMaterial:
    """The sandbox's TLS material, created or completed for ``logins``."""
    return ensure_tls_material(sandbox_tls_dir(settings), logins or [])


def sandbox_url(settings: Settings, *, tls: bool = True) -> str:
    scheme = "https" if tls else "http"
    return f"{scheme}://{settings.sandbox_host}:{settings.sandbox_tdt_port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS's pick)."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def sandbox_base_port(host: str = "127.0.0.1", block: int = 10) -> int:
    """A base port for ``relais sandbox`` whose ``block`` ports are all free now: the
    sandboxes listen on the base port plus their offset (``sandbox/catalogue.py``)."""
    import socket

    for _ in range(100):
        base = free_port(host)
        if base + block >= 65535:
            continue
        try:
            for port in range(base, base + block):
                with socket.socket() as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return base
    raise InfrastructureError(f"no block of {block} free ports found on {host}")


def registries_url(settings: Settings, port: int, *, tls: bool = True) -> str:
    """The sandbox registries' root (Sirene under ``/api-sirene/3.11``, API Entreprise at
    the root): HTTPS with the server certificate only, as the real registries."""
    return f"{'https' if tls else 'http'}://{settings.sandbox_host}:{port}"


def sandbox_member(
    settings: Settings, siren: str, name: str, department: str, *, tls: bool = True,
    tdt_options: Mapping[str, str] | None = None,
) -> Registration:
    """A member whose TdT is the sandbox (login = SIREN = its certificate's CN).

    With ``tls``, the member gets its client certificate, encrypted key and the CA
    of the sandbox (made now if missing); its key password is read from
    :data:`SANDBOX_KEY_PASSWORD_ENV`. HTTP Basic is sent too, as Pastell does.
    ``tdt_options`` are added to the TdT account's options.
    """
    tdt = TdtSettings(url=sandbox_url(settings, tls=tls), login=siren,
                      password_env=SANDBOX_PASSWORD_ENV)
    if tls:
        material = sandbox_tls_material(settings, [siren])
        credentials = material.client(siren)
        tdt = TdtSettings(
            url=tdt.url, login=siren, password_env=SANDBOX_PASSWORD_ENV,
            cert_file=str(credentials.cert_file), key_file=str(credentials.key_file),
            key_password_env=SANDBOX_KEY_PASSWORD_ENV, ca_file=str(material.ca_file),
        )
    if tdt_options:  # e.g. {"pes_signature_required": "true"} (agents.pes.deps)
        tdt = replace(tdt, options={**tdt.options, **tdt_options})
    return new_member(siren, name, department, tdt=tdt)


IPARAPHEUR_PORT_OFFSET = 2
"""The sandbox i-Parapheur's port: the sandbox base port (the TdT's) + 2."""
IPARAPHEUR_PASSWORD_ENV = "RELAIS_IPARAPHEUR_PASSWORD"  # a variable's name
IPARAPHEUR_SANDBOX_LOGIN = "ws-relais"
IPARAPHEUR_SANDBOX_PASSWORD = "ws-relais"  # the loopback sandbox's default account


def iparapheur_url(settings: Settings, *, tls: bool = True) -> str:
    """The sandbox i-Parapheur's root (SOAP at ``/ws-iparapheur``)."""
    scheme = "https" if tls else "http"
    port = settings.sandbox_tdt_port + IPARAPHEUR_PORT_OFFSET
    return f"{scheme}://{settings.sandbox_host}:{port}"


def with_iparapheur(registration: Registration, settings: Settings, options: Mapping[str, str],
                    *, login: str = IPARAPHEUR_SANDBOX_LOGIN,
                    password_env: str = IPARAPHEUR_PASSWORD_ENV,
                    tls: bool = False) -> Registration:
    """``registration`` with an ``iparapheur`` account on the sandbox i-Parapheur (Basic
    ``login``, password in ``password_env``; with ``tls``, the login's client certificate
    of the sandbox's TLS material, as the TdT's) and ``options`` (``acte.type``,
    ``acte.sub_type``, ``wsdl``…: agents/signature/settings.py)."""
    account = PartnerAccount(url=f"{iparapheur_url(settings, tls=tls)}/ws-iparapheur",
                             login=login, password_env=password_env, options=dict(options))
    return _with_account(registration, settings, "iparapheur", account,
                         client=login if tls else None)


def _with_account(registration: Registration, settings: Settings, partner: str,
                  account: PartnerAccount, *, client: str | None) -> Registration:
    """``registration`` with ``account`` as its ``partner`` account; with a ``client``, the
    account presents that client's certificate of the sandbox's TLS material."""
    if client is not None:
        material = sandbox_tls_material(settings, [client])
        credentials = material.client(client)
        account = replace(account, cert_file=str(credentials.cert_file),
                          key_file=str(credentials.key_file),
                          key_password_env=SANDBOX_KEY_PASSWORD_ENV,
                          ca_file=str(material.ca_file))
    member = registration.member
    accounts = {**member.accounts, partner: account}
    return replace(registration, member=replace(member, accounts=accounts))


ARCHIVE_PORT_OFFSET = 3
"""The sandbox archive's port: the sandbox base port (the TdT's) + 3 (its catalogue entry,
``sandbox.archive.partner.ARCHIVE``)."""
ARCHIVE_SANDBOX_APPLICATION = "relais"
"""The application the sandbox archive knows by default (its client certificate's CN)."""
ARCHIVE_SANDBOX_OPTIONS: Mapping[str, str] = {
    "tenant": "1", "archival_agency": "Vitam-sandbox", "archival_agreement": "IC-000001",
    "seda_version": "2.2", "access_rule": "ACC-00001", "auto_archive": "true",
}
"""The sandbox archive account of a demo member: every acknowledged acte is archived."""


def archive_url(settings: Settings, *, tls: bool = True) -> str:
    """The sandbox archive's root (Vitam's ``/ingest-external/v1``… under it)."""
    scheme = "https" if tls else "http"
    return f"{scheme}://{settings.sandbox_host}:{settings.sandbox_tdt_port + ARCHIVE_PORT_OFFSET}"


def with_archive(registration: Registration, settings: Settings,
                 options: Mapping[str, str] = ARCHIVE_SANDBOX_OPTIONS, *,
                 tls: bool = True) -> Registration:
    """``registration`` with an ``archive`` account on the sandbox archive (``options``:
    connectors/archive/settings.py; the default opts in to automatic archiving). With
    ``tls``, the account presents the sandbox application's client certificate (Vitam
    authenticates an application, not a member, by its certificate)."""
    account = PartnerAccount(url=archive_url(settings, tls=tls), options=dict(options))
    return _with_account(registration, settings, "archive", account,
                         client=ARCHIVE_SANDBOX_APPLICATION if tls else None)


def sandbox_control_client(
    settings: Settings, *, tls: bool = True, timeout: float = 10.0
) -> httpx.AsyncClient:
    """An httpx client for the sandbox's control endpoints (``/sandbox/faults``, ``/stats``),
    presenting the sandbox's operator certificate (it maps to no TdT account)."""
    if not tls:
        return httpx.AsyncClient(timeout=timeout)
    material = sandbox_tls_material(settings)
    context = ssl.create_default_context(cafile=str(material.ca_file))
    context.load_cert_chain(str(material.operator.cert_file), str(material.operator.key_file))
    return httpx.AsyncClient(timeout=timeout, verify=context)


def sandbox_config(
    registrations: list[Registration],
    *,
    schedule: dict[str, float] | None = None,
    faults: dict[str, Any] | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """A sandbox TdT configuration with one account per member."""
    return {
        "accounts": [
            {"login": r.member.siren, "password": SANDBOX_PASSWORD, "siren": r.member.siren,
             "department": r.member.department, "name": r.member.name}
            for r in registrations
        ],
        "schedule": schedule or {"transmit_after": 0.5, "acknowledge_after": 1.5,
                                 "prefecture_message_after": 3.0},
        "faults": faults or {},
        "seed": seed,
    }


@dataclass
class Stack:
    settings: Settings
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    tls: bool = True
    registries_port: int = 0
    """Port of the sandbox registries (0: a free one, picked at start)."""

    def __post_init__(self) -> None:
        # a free port outside the block the other sandboxes take (TdT port + offsets)
        base = self.settings.sandbox_tdt_port
        while not self.registries_port or base <= self.registries_port <= base + 9:
            self.registries_port = free_port(self.settings.sandbox_host)

    def registries_env(self) -> dict[str, str]:
        """The hub's registry settings for the sandbox registries (Sirene with its key)."""
        url = registries_url(self.settings, self.registries_port, tls=self.tls)
        ca = {"RELAIS_REGISTRY_CA_FILE": str(sandbox_tls_material(self.settings).ca_file)} \
            if self.tls else {}
        return {
            "RELAIS_SANDBOX_REGISTRIES_PORT": str(self.registries_port),
            "RELAIS_REGISTRY_SIRENE_URL": f"{url}/api-sirene/3.11",
            "RELAIS_SIRENE_API_KEY": DEFAULT_SIRENE_KEY,  # the loopback sandbox's key
            **ca,
        }

    def env(self) -> dict[str, str]:
        s = self.settings
        key_password = (
            {SANDBOX_KEY_PASSWORD_ENV: sandbox_tls_material(s).key_password} if self.tls else {}
        )
        return {
            **self.registries_env(),
            "RELAIS_KAFKA_BOOTSTRAP": s.bootstrap_servers,
            "RELAIS_DATA_DIR": str(s.data_dir),
            "RELAIS_APP_ID": s.app_id,
            "RELAIS_API_PORT": str(s.api_port),
            "RELAIS_SANDBOX_TDT_PORT": str(s.sandbox_tdt_port),
            "RELAIS_LOG_FORMAT": "json",
            SANDBOX_PASSWORD_ENV: SANDBOX_PASSWORD,
            IPARAPHEUR_PASSWORD_ENV: IPARAPHEUR_SANDBOX_PASSWORD,
            **key_password,
            **hub_security(s).as_env(),
            **self.extra_env,
        }

    def start_sandbox(
        self, config: dict[str, Any], registries: dict[str, Any] | None = None,
        iparapheur: dict[str, Any] | None = None, archive: dict[str, Any] | None = None,
    ) -> ManagedProcess:
        """The sandbox partners (the TdT with ``config``; the registries with
        ``registries``, e.g. a shortened quota window, on :attr:`registries_port`; the
        i-Parapheur and the archive with theirs, on the base port + their offset)."""
        path = self.log_dir / "sandbox-tdt.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        extra: list[str] = []
        if registries is not None:
            registries_path = self.log_dir / "sandbox-registries.json"
            registries_path.write_text(json.dumps(registries, indent=2), encoding="utf-8")
            extra = ["--config", f"registries={registries_path}"]
        if iparapheur is not None:  # the signers' behaviour (base port + 2)
            iparapheur_path = self.log_dir / "sandbox-iparapheur.json"
            iparapheur_path.write_text(json.dumps(iparapheur, indent=2), encoding="utf-8")
            extra += ["--config", f"iparapheur={iparapheur_path}"]
        if archive is not None:  # the sandbox archive's settings (base port + 3)
            archive_path = self.log_dir / "sandbox-archive.json"
            archive_path.write_text(json.dumps(archive, indent=2), encoding="utf-8")
            extra += ["--config", f"archive={archive_path}"]
        logins = [str(account["login"]) for account in config.get("accounts", [])]
        tls = (["--tls-dir", str(sandbox_tls_material(self.settings, logins).directory)]
               if self.tls else ["--no-tls"])
        process = ManagedProcess("sandbox", ["sandbox", "--config", str(path), *extra, *tls],
                                 self.env(), self.log_dir / "sandbox.log")
        process.start()
        self.processes["sandbox"] = process  # stop() ends it even if it never gets ready
        process.wait_for("sandbox.ready", timeout=60)
        return process

    def start_worker(self, name: str = "worker") -> ManagedProcess:
        # two workers at once need their own transactional ids (relais/stages/instance.py)
        env = {"RELAIS_WORKER_ID": f"{self.settings.app_id}-{name}", **self.env()}
        process = ManagedProcess(name, ["worker"], env, self.log_dir / f"{name}.log")
        process.start()
        self.processes[name] = process
        process.wait_for(READY_LINE, timeout=120)
        return process

    def start_api(self) -> ManagedProcess:
        process = ManagedProcess("api", ["api"], self.env(), self.log_dir / "api.log")
        process.start()
        process.wait_for("Relais API on", timeout=60)
        self.processes["api"] = process
        return process

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.processes.clear()
