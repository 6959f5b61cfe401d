"""How Relais's Kafka clients authenticate: one ``KafkaSecurity`` per cluster.

Every producer, consumer, admin client and the faust app are built by
``relais.kafka.clients``, which asks :func:`security_for` for the security of
the bootstrap servers it connects to. The answer is, in order:

1. what :func:`remember` recorded for those bootstrap servers in this process
   (tests and tools that talk to several clusters register each one);
2. otherwise the process settings (``RELAIS_KAFKA_SECURITY_PROTOCOL``,
   ``RELAIS_KAFKA_SASL_MECHANISM``, ``RELAIS_KAFKA_USERNAME``,
   ``RELAIS_KAFKA_PASSWORD``, ``RELAIS_KAFKA_CA_FILE``), where a local broker
   with authentication on and no user configured means its admin user, read
   from ``<data_dir>/kafka/credentials.json`` (written 0600 at its first start).
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relais.errors import ConfigurationError
from relais.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
CREDENTIALS_FILE = "credentials.json"
ADMIN_USER = "relais-admin"
"""The local broker's super user: operator tools (topics, members, ACLs)."""
HUB_USER = "relais-hub"
"""The hub's processes (worker, API): ACLs on the hub's topics, groups and transactional ids."""


@dataclass(frozen=True)
class KafkaSecurity:
    """Security settings of a Kafka client; the default is no authentication."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"RELAIS_KAFKA_SECURITY_PROTOCOL={self.protocol!r}: expected one of "
                f"{', '.join(PROTOCOLS)}"
            )
        if self.sasl and self.mechanism not in MECHANISMS:
            raise ConfigurationError(
                f"RELAIS_KAFKA_SASL_MECHANISM={self.mechanism!r}: expected one of "
                f"{', '.join(MECHANISMS)}"
            )
        if self.sasl and not (self.username and self.password):
            raise ConfigurationError(
                f"Kafka security protocol {self.protocol} needs RELAIS_KAFKA_USERNAME and "
                "RELAIS_KAFKA_PASSWORD (the local broker's are in "
                f"<data_dir>/kafka/{CREDENTIALS_FILE})"
            )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            options.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        return options

    def as_env(self) -> dict[str, str]:
        """The ``RELAIS_KAFKA_*`` variables that give a child process this security."""
        env = {
            "RELAIS_KAFKA_SECURITY_PROTOCOL": self.protocol,
            "RELAIS_KAFKA_SASL_MECHANISM": self.mechanism,
        }
        if self.sasl:
            env["RELAIS_KAFKA_USERNAME"] = self.username
            env["RELAIS_KAFKA_PASSWORD"] = self.password
        if self.ca_file:
            env["RELAIS_KAFKA_CA_FILE"] = self.ca_file
        return env


def credentials_path(data_dir: Path) -> Path:
    """Where the local broker of ``data_dir`` keeps its generated passwords."""
    return Path(data_dir) / "kafka" / CREDENTIALS_FILE


def read_local_credentials(data_dir: Path) -> dict[str, str]:
    """User → password of the local broker of ``data_dir`` ({} before its first start)."""
    path = credentials_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the Kafka credentials in {path}: {exc}") from exc
    users = raw.get("users", {}) if isinstance(raw, dict) else {}
    return {str(k): str(v) for k, v in users.items()}


def security_from_settings(settings: Settings, *, user: str = "") -> KafkaSecurity:
    """The security of clients built from ``settings``.

    ``user`` picks one of the local broker's generated users (``relais-hub``)
    when no user is configured; the default is its admin user.
    """
    local = not settings.kafka_bootstrap
    auth_on = settings.kafka_auth.strip().lower() != "off"
    protocol = settings.kafka_security_protocol.strip().upper()
    if not protocol:
        protocol = "SASL_PLAINTEXT" if local and auth_on else "PLAINTEXT"
    username, password = settings.kafka_username, settings.kafka_password
    if protocol.startswith("SASL_") and not username:
        users = read_local_credentials(settings.data_dir)
        username = user or ADMIN_USER
        password = users.get(username, "")
        if not password:
            raise ConfigurationError(
                f"no Kafka credentials: set RELAIS_KAFKA_USERNAME and RELAIS_KAFKA_PASSWORD, or "
                f"start the local broker (`relais kafka up`), which writes "
                f"{credentials_path(settings.data_dir)}"
            )
    return KafkaSecurity(
        protocol=protocol,
        mechanism=settings.kafka_sasl_mechanism.strip().upper() or "SCRAM-SHA-512",
        username=username,
        password=password,
        ca_file=settings.kafka_ca_file,
    )


_known: dict[str, KafkaSecurity] = {}
_known_hub: dict[str, KafkaSecurity] = {}
_lock = threading.Lock()


def remember(
    bootstrap_servers: str, security: KafkaSecurity, *, hub: KafkaSecurity | None = None
) -> None:
    """Use ``security`` for every client of ``bootstrap_servers`` built in this process,
    and ``hub`` for the hub processes this process starts on that cluster."""
    with _lock:
        _known[bootstrap_servers] = security
        if hub is not None:
            _known_hub[bootstrap_servers] = hub


def forget(bootstrap_servers: str) -> None:
    with _lock:
        _known.pop(bootstrap_servers, None)
        _known_hub.pop(bootstrap_servers, None)


def security_for(bootstrap_servers: str) -> KafkaSecurity:
    """The security to connect to ``bootstrap_servers`` (see the module docstring)."""
    with _lock:
        known = _known.get(bootstrap_servers)
    if known is not None:
        return known
    return security_from_settings(Settings.from_env())


def hub_security(settings: Settings) -> KafkaSecurity:
    """What the hub's processes (worker, API) started from ``settings`` connect as.

    The configured user if any; else the hub user remembered for the cluster (a
    local broker started by this process); else the local broker's ``relais-hub``
    user (ACLs on the hub's topics, groups and transactional ids, not a super user).
    """
    if not settings.kafka_username:
        with _lock:
            known = _known_hub.get(settings.bootstrap_servers)
        if known is not None:
            return known
    return security_from_settings(settings, user=HUB_USER)
