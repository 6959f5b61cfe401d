"""One typed settings object, read from environment variables.

Every setting has a default and an environment variable named ``RELAIS_<FIELD>``
in upper case (for example ``RELAIS_KAFKA_BOOTSTRAP``). ``relais config`` prints
the effective values with secrets masked.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SECRET_MARK = "secret"
_URL_PASSWORD_RE = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?P<password>[^@/?#\s]*)@"
)


def mask_url_credentials(text: str) -> str:
    """``text`` with the password of every URL in it masked: ``https://user:pass@host`` →
    ``https://user:***@host`` (``relais config`` shows every value through this)."""
    return _URL_PASSWORD_RE.sub(lambda m: f"{m.group('head')}:***@", text)


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Effective configuration of one Relais process."""

    data_dir: Path = field(
        default_factory=lambda: _project_root() / ".relais",
        metadata={"help": "Where Relais keeps Kafka jars and logs, blobs and worker state."},
    )
    kafka_bootstrap: str = field(
        default="",
        metadata={
            "help": "Bootstrap servers of an existing cluster. Empty: the broker started "
            "by `relais kafka up` on kafka_port."
        },
    )
    kafka_port: int = field(default=9092, metadata={"help": "Client port of the local broker."})
    kafka_controller_port: int = field(
        default=9093, metadata={"help": "KRaft controller port of the local broker."}
    )
    kafka_heap: str = field(default="768m", metadata={"help": "JVM heap of the local broker."})
    kafka_libs_dir: str = field(
        default="",
        metadata={
            "help": "Directory caching the local broker's jars, shareable between data dirs. "
            "Empty: <data_dir>/kafka/libs."
        },
    )
    kafka_auth: str = field(
        default="on",
        metadata={"help": "`on`: the local broker requires SASL/SCRAM-SHA-512 and enforces ACLs "
                  "(credentials generated at first start under <data_dir>/kafka); `off`: "
                  "no authentication and no ACLs (only for a machine nobody else can reach)."},
    )
    kafka_security_protocol: str = field(
        default="",
        metadata={"help": "PLAINTEXT, SASL_PLAINTEXT, SSL or SASL_SSL. Empty: SASL_PLAINTEXT for "
                  "the local broker when kafka_auth is on, PLAINTEXT otherwise."},
    )
    kafka_sasl_mechanism: str = field(
        default="SCRAM-SHA-512",
        metadata={"help": "SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN."},
    )
    kafka_username: str = field(
        default="",
        metadata={"help": "SASL user. Empty with the local broker: its admin user, read from "
                  "<data_dir>/kafka/credentials.json."},
    )
    kafka_password: str = field(
        default="", repr=False, metadata={"help": "SASL password.", SECRET_MARK: True}
    )
    kafka_ca_file: str = field(
        default="",
        metadata={"help": "PEM file of the CA that signed the brokers' certificates (SSL, "
                  "SASL_SSL); empty: the system's trust store."},
    )
    app_id: str = field(default="relais-hub", metadata={"help": "Consumer group of the hub."})
    max_submission_bytes: int = field(
        default=256 * 1024,
        metadata={"help": "Largest submission record accepted; documents go to the blob store."},
    )
    max_acte_bytes: int = field(
        default=150 * 1024 * 1024,
        metadata={"help": "The TdT's archive limit (S²LOW's ACTES_ARCHIVE_MAX_SIZE, 150 MiB): "
                          "an acte's files and the TdT's tar.gz of them must fit in it."},
    )
    stage_overlap_commits: bool = field(
        default=True,
        metadata={"help": "Stage runners handle the next batch while the previous one's "
                          "transaction commits (`false`: handle, then commit, one batch at a "
                          "time)."},
    )
    api_host: str = field(default="127.0.0.1", metadata={"help": "Bind address of the hub API."})
    api_port: int = field(default=8470, metadata={"help": "Port of the hub API (blob uploads)."})
    api_max_connections: int = field(
        default=4096,
        metadata={"help": "Connections the hub API holds at once, all clients together "
                          "(lowered below its file-descriptor limit)."},
    )
    api_max_connections_per_client: int = field(
        default=64,
        metadata={"help": "Connections one client address may hold on the hub API (raise it "
                          "behind a reverse proxy, where every client has the proxy's address)."},
    )
    api_header_timeout_seconds: float = field(
        default=10.0,
        metadata={"help": "Seconds a hub API connection has to send a complete request head."},
    )
    api_body_timeout_seconds: float = field(
        default=30.0,
        metadata={"help": "Seconds an upload to the hub API may go without sending a byte."},
    )
    sandbox_host: str = field(default="127.0.0.1", metadata={"help": "Bind address of sandboxes."})
    sandbox_tdt_port: int = field(default=8480, metadata={"help": "Port of the sandbox TdT."})
    schema_registry_url: str = field(
        default="",
        metadata={"help": "Confluent-compatible registry URL; empty: Avro single-object encoding."},
    )
    schema_registry_user: str = field(
        default="", metadata={"help": "Registry user (HTTP Basic); empty: no authentication."}
    )
    schema_registry_password: str = field(
        default="",
        repr=False, metadata={"help": "Registry password.", SECRET_MARK: True}
    )
    log_format: str = field(default="json", metadata={"help": "`json` or `console`."})
    log_level: str = field(default="INFO", metadata={"help": "Minimum level logged."})
    poll_tiers: str = field(
        default="5s,30s,2m,10m,1h",
        metadata={"help": "Delay tiers between TdT status polls of one acte: the first poll, "
                  "the second…, the last repeated (comma-separated)."},
    )
    retry_tiers: str = field(
        default="30s,5m,1h",
        metadata={"help": "Delay tiers a retriable failure goes through before its dead letter "
                  "(comma-separated; tiers: 5s, 30s, 2m, 5m, 10m, 1h)."},
    )
    partner_retry_tiers: str = field(
        default="",
        metadata={"help": "Retry tiers per partner, overriding RELAIS_RETRY_TIERS, e.g. "
                  "`tdt=30s,5m,1h;sirene=5s,30s`. A member's own tiers (registry) win."},
    )
    tdt_timeout_seconds: float = field(
        default=30.0, metadata={"help": "Timeout of each call to a TdT."}
    )
    prefecture_poll_seconds: float = field(
        default=10.0, metadata={"help": "How often each TdT is asked for prefecture messages."}
    )
    registry_sirene_url: str = field(
        default="",
        metadata={"help": "Base URL of INSEE API Sirene 3.11 (https://api.insee.fr/api-sirene/"
                  "3.11). Empty: the registries are not configured (look-ups are answered "
                  "`rejected`, `relais members add` takes the operator's values)."},
    )
    registry_sirene_key_env: str = field(
        default="RELAIS_SIRENE_API_KEY",
        metadata={"help": "Name of the environment variable holding the Sirene API key "
                  "(header X-INSEE-Api-Key-Integration); never the key itself."},
    )
    registry_sirene_quota: int = field(
        default=30, metadata={"help": "Sirene calls allowed per quota window, all workers "
                              "together (INSEE: 30 a minute per key)."}
    )
    registry_entreprise_url: str = field(
        default="",
        metadata={"help": "Base URL of API Entreprise v3 (https://entreprise.api.gouv.fr); "
                  "empty: not used."},
    )
    registry_entreprise_token_env: str = field(
        default="RELAIS_ENTREPRISE_TOKEN",
        metadata={"help": "Name of the environment variable holding the API Entreprise "
                  "bearer token; never the token itself."},
    )
    registry_entreprise_recipient: str = field(
        default="",
        metadata={"help": "SIRET of the administration on whose behalf API Entreprise is "
                  "called (its mandatory `recipient`)."},
    )
    registry_entreprise_quota: int = field(
        default=250, metadata={"help": "API Entreprise calls allowed per quota window."}
    )
    registry_quota_window_seconds: float = field(
        default=60.0,
        metadata={"help": "The registries' rolling quota window in seconds (60 for the real "
                  "ones; the sandbox's can be shortened for tests)."},
    )
    registry_ca_file: str = field(
        default="",
        metadata={"help": "PEM file of the CA of the registries' server certificates (the "
                  "sandbox's); empty: the system's trust store."},
    )
    registry_timeout_seconds: float = field(
        default=10.0, metadata={"help": "Read timeout of each call to a registry."}
    )
    registry_max_wait_seconds: float = field(
        default=5.0,
        metadata={"help": "Wait budget of one batch of look-ups: longest they wait in line "
                  "for their registry's quota before the rest are parked on a delay tier "
                  "and their members told they are pending."},
    )
    contractor_wait_tiers: str = field(
        default="5s,5s,30s,30s,2m,2m,5m,5m",
        metadata={"help": "Delay tiers a contract of a member that refuses closed contractors "
                  "waits on, one per parking, for its contractors' registry answers; after "
                  "the last it is rejected as contractor_unverified (about 15 minutes)."},
    )
    sandbox_registries_port: int = field(
        default=8485, metadata={"help": "Port of the sandbox registries."}
    )

    @property
    def bootstrap_servers(self) -> str:
        """The servers clients connect to."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``RELAIS_*`` variables; keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RELAIS_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _coerce(f, raw)
        values.update(overrides)
        return cls(**values)

    def describe(self) -> list[tuple[str, str, str, str]]:
        """Rows of (environment variable, effective value, default, help), secrets masked."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
            secret = bool(f.metadata.get(SECRET_MARK))
            shown = ("****" if value else "") if secret else mask_url_credentials(str(value))
            env = f"RELAIS_{f.name.upper()}"
            rows.append((env, shown, mask_url_credentials(str(default)),
                         f.metadata.get("help", "")))
        return rows


def _coerce(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(raw)
    if kind == "bool":
        word = raw.strip().lower()
        if word not in _BOOL_WORDS:
            raise ValueError(f"RELAIS_{f.name.upper()}: expected true or false, got {raw!r}")
        return _BOOL_WORDS[word]
    return raw


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}
