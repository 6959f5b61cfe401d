"""The project's own Apache Kafka broker: one KRaft node on loopback, from Maven Central jars.

Relais needs no Docker to run or to test: ``LocalBroker`` fetches the pinned
broker jars with Maven (``ops/kafka/pom.xml``), formats a KRaft storage
directory once and runs ``kafka.Kafka`` as a combined broker and controller
(``node.id=1``) listening on ``127.0.0.1`` only. Its files live under
``<data_dir>/kafka``::

    libs/               the jars (or RELAIS_KAFKA_LIBS_DIR, shareable between data dirs)
    data/               log.dirs: topic partitions and the KRaft metadata log
    server.properties   rewritten from the settings at each start
    server.log          the broker's log (log4j2, ops/kafka/log4j2.properties)
    jvm.out             the JVM's own stdout/stderr (empty unless the JVM itself fails)
    broker.pid          pid of the running broker (also its process group id)
    cluster.id          the KRaft cluster id the storage was formatted with
    credentials.json    generated passwords of its SASL users (mode 0600; authentication on)

Authentication (``RELAIS_KAFKA_AUTH=on``, the default): the client listener is
SASL_PLAINTEXT with SCRAM-SHA-512 only, on loopback; the controller listener
uses SASL/PLAIN with a user known to the controller alone. The
``StandardAuthorizer`` enforces ACLs with ``allow.everyone.if.no.acl.found=false``;
``relais-admin`` (operator tools) is a super user; ``relais-hub`` (worker, API)
gets the ACLs of ``relais.kafka.acls.hub_acls`` at each start; members get
theirs from ``relais members add``. SCRAM credentials of ``relais-admin`` and
``relais-hub`` are written into the metadata log when the storage is formatted
(``kafka-storage format --add-scram``), since the broker authenticates to
itself as ``relais-admin`` before any client could create them. A listener
reachable from other hosts must be SASL_SSL (SCRAM over TLS): this broker only
ever listens on loopback; a deployment on a network uses its own cluster
(``RELAIS_KAFKA_BOOTSTRAP``, ``RELAIS_KAFKA_SECURITY_PROTOCOL=SASL_SSL``,
``RELAIS_KAFKA_CA_FILE``; see docker-compose.yml and docs/operations.md).

Why Kafka 4.1.1: it is the version aiokafka 0.14 (our client, and faust's) was
verified against on this project's machines for everything Relais relies on:
admin requests, the idempotent producer, transactions with ``read_committed``
consumers, consumer groups and pattern subscriptions. aiokafka only sends
version 0 of ``InitProducerId``; 4.1.1 still accepts it. Change the version
here and in the pom together, then re-run the integration tests.

When ``settings.kafka_bootstrap`` is set, Relais uses that external cluster and
this module refuses to start a broker.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from relais.errors import ConfigurationError, InfrastructureError
from relais.kafka.security import (
    ADMIN_USER,
    HUB_USER,
    KafkaSecurity,
    credentials_path,
    read_local_credentials,
    remember,
)
from relais.settings import Settings

log = structlog.get_logger(__name__)

KAFKA_VERSION = "4.1.1"
"""The pinned Apache Kafka version; ``ops/kafka/pom.xml`` pins the same one."""

HERE = Path(__file__).resolve().parent
POM_PATH = HERE / "pom.xml"
LOG4J_CONFIG_PATH = HERE / "log4j2.properties"

NODE_ID = 1
LISTEN_HOST = "127.0.0.1"
CONTROLLER_USER = "relais-controller"
"""Known to the controller listener only (SASL/PLAIN, its password in server.properties)."""
SCRAM_MECHANISM = "SCRAM-SHA-512"
_T = TypeVar("_T")
_VERSION_MARKER = ".relais-kafka-version"
_MAVEN_TIMEOUT = 900.0
_FORMAT_TIMEOUT = 120.0
_SHORT_LIVED_JVM_OPTIONS = (
    "-Xmx256m",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
)
"""For the one-shot storage tool: the quick C1 compiler only, the simplest collector and the
JDK's class-data archive (about 1.1-2.0 s -> 0.8-1.2 s to format, measured on 2 CPUs)."""
_JAVA_HINT = "a Java 17+ runtime (for example `apt-get install openjdk-17-jre-headless`)"
_MAVEN_HINT = "Apache Maven (for example `apt-get install maven`)"


@dataclass(frozen=True)
class BrokerStatus:
    """What ``relais kafka status`` shows."""

    running: bool
    pid: int | None
    bootstrap: str
    version: str
    data_dir: Path
    external: bool = False


def auth_enabled(settings: Settings) -> bool:
    """Whether the local broker requires authentication (``RELAIS_KAFKA_AUTH``)."""
    value = settings.kafka_auth.strip().lower()
    if value not in ("on", "off"):
        raise ConfigurationError(f"RELAIS_KAFKA_AUTH={settings.kafka_auth!r}: expected on or off")
    return value == "on"


def _listener_lines(settings: Settings, users: dict[str, str] | None) -> list[str]:
    port = settings.kafka_port
    controller_port = settings.kafka_controller_port
    if users is None:
        return [
            "# Loopback only: clients on kafka_port, the controller quorum on "
            "kafka_controller_port. No authentication (RELAIS_KAFKA_AUTH=off).",
            f"listeners=PLAINTEXT://{LISTEN_HOST}:{port},"
            f"CONTROLLER://{LISTEN_HOST}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{LISTEN_HOST}:{port}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]
    admin, controller = users[ADMIN_USER], users[CONTROLLER_USER]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    return [
        "# Loopback only: clients on kafka_port (SASL/SCRAM-SHA-512), the controller quorum",
        "# on kafka_controller_port (SASL/PLAIN, one user). A listener other hosts can reach",
        "# must be SASL_SSL instead.",
        f"listeners=CLIENT://{LISTEN_HOST}:{port},CONTROLLER://{LISTEN_HOST}:{controller_port}",
        f"advertised.listeners=CLIENT://{LISTEN_HOST}:{port}",
        "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=CLIENT",
        "controller.listener.names=CONTROLLER",
        f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
        f"listener.name.client.sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"listener.name.client.scram-sha-512.sasl.jaas.config={scram} required "
        f'username="{ADMIN_USER}" password="{admin}";',
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={plain} required "
        f'username="{CONTROLLER_USER}" password="{controller}" '
        f'user_{CONTROLLER_USER}="{controller}";',
        "",
        "# Authorisation: ACLs only; nothing is allowed without one, except to the super users.",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN_USER};User:{CONTROLLER_USER}",
    ]


def render_server_properties(
    settings: Settings, log_dirs: Path, users: dict[str, str] | None = None
) -> str:
    """The broker's ``server.properties`` for these settings, storing partitions in ``log_dirs``.

    ``users`` (user → password, from ``credentials.json``) turns authentication
    on; None leaves the broker open (``RELAIS_KAFKA_AUTH=off``).
    """
    controller_port = settings.kafka_controller_port
    # Java properties treat a backslash as an escape character.
    data = str(log_dirs).replace("\\", "\\\\")
    lines = [
        "# Generated by ops/kafka/broker.py from the Relais settings; rewritten at each start.",
        "",
        "# One KRaft node acting as both broker and controller.",
        "process.roles=broker,controller",
        f"node.id={NODE_ID}",
        f"controller.quorum.voters={NODE_ID}@{LISTEN_HOST}:{controller_port}",
        "",
        *_listener_lines(settings, users),
        "",
        "# Storage.",
        f"log.dirs={data}",
        "",
        "# Topics are declared in topics/ and created by `relais topics apply`, never implicitly.",
        "auto.create.topics.enable=false",
        "num.partitions=1",
        "default.replication.factor=1",
        "",
        "# Internal topics of a single-node cluster.",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "",
        "# Consumer groups start as soon as their first member joins.",
        "group.initial.rebalance.delay.ms=0",
        "",
    ]
    return "\n".join(lines)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    This is the format ``kafka-storage.sh random-uuid`` prints; like Kafka we
    avoid ids starting with ``-`` (they read as command-line options).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


class LocalBroker:
    """Fetches, formats, starts and stops the local broker of one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = Path(settings.data_dir) / "kafka"
        self.libs_dir = (
            Path(settings.kafka_libs_dir) if settings.kafka_libs_dir else self.home / "libs"
        )
        self.log_dirs = self.home / "data"
        self.properties_path = self.home / "server.properties"
        self.log_path = self.home / "server.log"
        self.jvm_out_path = self.home / "jvm.out"
        self.pid_path = self.home / "broker.pid"
        self.cluster_id_path = self.home / "cluster.id"
        self.credentials_path = credentials_path(Path(settings.data_dir))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def external(self) -> bool:
        """True when the settings point at an existing cluster instead of this broker."""
        return bool(self.settings.kafka_bootstrap)

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers of the local broker."""
        return f"{LISTEN_HOST}:{self.settings.kafka_port}"

    @property
    def auth(self) -> bool:
        """Whether this broker requires SASL and enforces ACLs."""
        return auth_enabled(self.settings)

    def security(self, user: str = ADMIN_USER) -> KafkaSecurity:
        """How ``user`` (``relais-admin`` or ``relais-hub``) connects to this broker."""
        if not self.auth:
            return KafkaSecurity()
        users = read_local_credentials(Path(self.settings.data_dir))
        if user not in users:
            raise ConfigurationError(
                f"no credentials for {user} in {self.credentials_path}: start the broker first"
            )
        return KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism=SCRAM_MECHANISM,
                             username=user, password=users[user])

    # ------------------------------------------------------------ credentials

    def _ensure_credentials(self, formatted: bool) -> dict[str, str] | None:
        """The users of a secured broker, generated (0600) before its storage is formatted."""
        if not self.auth:
            return None
        users = read_local_credentials(Path(self.settings.data_dir))
        wanted = (ADMIN_USER, HUB_USER, CONTROLLER_USER)
        if all(users.get(name) for name in wanted):
            return users
        users = {name: secrets.token_urlsafe(24) for name in wanted}
        if formatted:
            self._secure_open_storage(users)
        self.home.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.credentials_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"users": users}, handle, indent=2)
        os.chmod(self.credentials_path, 0o600)
        log.info("kafka.credentials_generated", path=str(self.credentials_path),
                 users=sorted(users))
        return users

    def _secure_open_storage(self, users: dict[str, str]) -> None:
        """Secure a storage formatted without authentication (a data dir from before it was on).

        The broker starts once open, its admin and hub SCRAM credentials are added over
        the protocol, and it stops; the caller then starts it secured. Topics and records
        stay; members registered before have no Kafka user until registered again
        (`relais members add … --force`).
        """
        from relais.kafka.acls import set_scram_passwords

        log.warning("kafka.securing_open_storage", log_dirs=str(self.log_dirs))
        open_broker = LocalBroker(dataclasses.replace(self.settings, kafka_auth="off"))
        open_broker.start()
        try:

            async def add_users() -> None:
                async with admin_session(open_broker.bootstrap, KafkaSecurity()) as admin:
                    await set_scram_passwords(
                        admin, {user: users[user] for user in (ADMIN_USER, HUB_USER)}
                    )

            _run(add_users())
        finally:
            open_broker.stop()

    # ------------------------------------------------------------------ jars

    def ensure_jars(self) -> Path:
        """Fetch the pinned broker jars once and return their directory.

        The directory holds a marker naming the Kafka version and a digest of
        the pom; when either changes, the jars are fetched again. Concurrent
        callers sharing one libs directory wait on a file lock.
        """
        expected = self._jars_marker()
        if self._jars_ready(expected):
            return self.libs_dir
        self.libs_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._jars_lock():
            if self._jars_ready(expected):
                return self.libs_dir
            mvn = _require_tool("mvn", _MAVEN_HINT)
            _require_tool("java", _JAVA_HINT)
            started = time.monotonic()
            log.info("kafka.jars.fetching", version=KAFKA_VERSION, libs_dir=str(self.libs_dir))
            staging = Path(tempfile.mkdtemp(prefix=".kafka-jars-", dir=self.libs_dir.parent))
            try:
                shutil.copyfile(POM_PATH, staging / "pom.xml")
                fetched = staging / "libs"
                command = [
                    mvn,
                    "-q",
                    "-B",
                    "-Dstyle.color=never",
                    "-f",
                    str(staging / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={fetched}",
                    "-DincludeScope=runtime",
                ]
                try:
                    done = subprocess.run(
                        command,
                        cwd=staging,
                        capture_output=True,
                        text=True,
                        timeout=_MAVEN_TIMEOUT,
                        check=False,
                    )
                except subprocess.TimeoutExpired as exc:
                    raise InfrastructureError(
                        f"Maven did not fetch the Kafka {KAFKA_VERSION} jars within "
                        f"{_MAVEN_TIMEOUT:.0f} s"
                    ) from exc
                main_jar = fetched / _main_jar_name()
                if done.returncode != 0 or not main_jar.is_file():
                    output = _tail(done.stdout + done.stderr, 30)
                    raise InfrastructureError(
                        f"Maven failed to fetch the Kafka {KAFKA_VERSION} jars "
                        f"(exit {done.returncode}):\n{output}"
                    )
                (fetched / _VERSION_MARKER).write_text(expected + "\n", encoding="utf-8")
                if self.libs_dir.exists():
                    shutil.rmtree(self.libs_dir)
                fetched.rename(self.libs_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            jars = len(list(self.libs_dir.glob("*.jar")))
            log.info(
                "kafka.jars.fetched",
                version=KAFKA_VERSION,
                jars=jars,
                seconds=round(time.monotonic() - started, 2),
            )
        return self.libs_dir

    def _jars_marker(self) -> str:
        digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()[:16]
        return f"kafka {KAFKA_VERSION} pom {digest}"

    def _jars_ready(self, expected: str) -> bool:
        marker = self.libs_dir / _VERSION_MARKER
        try:
            recorded = marker.read_text(encoding="utf-8").strip()
        except OSError:
            return False
        return recorded == expected and (self.libs_dir / _main_jar_name()).is_file()

    @contextlib.contextmanager
    def _jars_lock(self) -> Iterator[None]:
        lock_path = self.libs_dir.with_name(f".{self.libs_dir.name}.lock")
        with open(lock_path, "w", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 90) -> float:
        """Start the broker and wait until it answers a Kafka request.

        Formats the storage on the first start. The JVM runs in its own
        session (and process group), so it outlives the calling process; its
        pid is written to ``broker.pid``. Returns the seconds from storage
        formatting (first start) or launch to ready, jar fetching excluded, or
        0.0 when this data dir's broker was already running (once it answers).

        Raises ``ConfigurationError`` when the settings name an external
        cluster, when java or mvn is missing or a port is taken, and
        ``InfrastructureError`` when the broker dies or is not ready in time.
        """
        if self.external:
            raise ConfigurationError(
                f"RELAIS_KAFKA_BOOTSTRAP is set ({self.settings.kafka_bootstrap}): Relais uses "
                "that external cluster and does not start a local broker. Unset it to use the "
                "local one."
            )
        running = self.running_pid()
        if running is not None:
            if self.auth:
                remember(self.bootstrap, self.security(), hub=self.security(HUB_USER))
            self._wait_ready(running, time.monotonic() + timeout, process=None)
            log.info("kafka.already_running", pid=running, bootstrap=self.bootstrap)
            return 0.0
        self.pid_path.unlink(missing_ok=True)

        java = _require_tool("java", _JAVA_HINT)
        libs = self.ensure_jars()
        for port in (self.settings.kafka_port, self.settings.kafka_controller_port):
            if _port_open(LISTEN_HOST, port):
                raise ConfigurationError(
                    f"Port {port} on {LISTEN_HOST} is already in use by another process: set "
                    "RELAIS_KAFKA_PORT / RELAIS_KAFKA_CONTROLLER_PORT to free ports, or "
                    "RELAIS_KAFKA_BOOTSTRAP to use a running cluster."
                )

        self.home.mkdir(parents=True, exist_ok=True)
        formatted = (self.log_dirs / "meta.properties").is_file()
        users = self._ensure_credentials(formatted)
        descriptor = os.open(self.properties_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(render_server_properties(self.settings, self.log_dirs, users))
        os.chmod(self.properties_path, 0o600)
        started = time.monotonic()
        if not formatted:
            self._format_storage(java, libs, users)

        command = [
            java,
            f"-Xmx{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *self._log_options(),
            "-cp",
            f"{libs}{os.sep}*",
            "kafka.Kafka",
            str(self.properties_path),
        ]
        log_offset = self.log_path.stat().st_size if self.log_path.is_file() else 0
        with open(self.jvm_out_path, "wb") as jvm_out:
            process = subprocess.Popen(
                command,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=jvm_out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = process
        self.pid_path.write_text(f"{process.pid}\n", encoding="utf-8")
        remember(self.bootstrap, self.security(), hub=self.security(HUB_USER))
        log.info("kafka.starting", pid=process.pid, bootstrap=self.bootstrap, home=str(self.home))

        self._wait_ready(process.pid, started + timeout, process=process, log_offset=log_offset)
        self._grant_hub()
        seconds = time.monotonic() - started
        log.info(
            "kafka.ready", pid=process.pid, bootstrap=self.bootstrap, seconds=round(seconds, 2)
        )
        return seconds

    def stop(self, timeout: float = 30) -> bool:
        """Stop the broker: SIGTERM to its process group, SIGKILL after ``timeout`` seconds.

        Returns True when a running broker was stopped, False when none was running.
        """
        pid = self.running_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        log.info("kafka.stopping", pid=pid)
        started = time.monotonic()
        self._signal(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("kafka.kill", pid=pid, after_seconds=timeout)
            self._signal(pid, signal.SIGKILL)
            if not self._wait_exit(pid, 10.0):
                raise InfrastructureError(f"Kafka broker pid {pid} survived SIGKILL")
        if self._proc is not None and self._proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        self.pid_path.unlink(missing_ok=True)
        self._proc = None
        log.info("kafka.stopped", pid=pid, seconds=round(time.monotonic() - started, 2))
        return True

    def _grant_hub(self) -> None:
        """Give ``relais-hub`` its ACLs (again: adding an existing ACL changes nothing)."""
        if not self.auth:
            return
        _run(grant_hub(self.bootstrap, self.security(), HUB_USER, self.settings.app_id))

    def status(self) -> BrokerStatus:
        """Whether this data dir's broker runs, with its pid and address."""
        if self.external:
            return BrokerStatus(
                running=False,
                pid=None,
                bootstrap=self.settings.kafka_bootstrap,
                version=KAFKA_VERSION,
                data_dir=self.home,
                external=True,
            )
        pid = self.running_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            version=KAFKA_VERSION,
            data_dir=self.home,
        )

    def wipe(self) -> None:
        """Stop the broker and delete its data, configuration and logs (the jars stay cached)."""
        self.stop()
        shutil.rmtree(self.log_dirs, ignore_errors=True)
        paths = (self.properties_path, self.cluster_id_path, self.jvm_out_path,
                 self.credentials_path)
        for path in paths:
            path.unlink(missing_ok=True)
        for path in self.home.glob("server.log*"):
            path.unlink(missing_ok=True)
        log.info("kafka.wiped", home=str(self.home))

    def running_pid(self) -> int | None:
        """The pid from ``broker.pid`` if that process is this data dir's live broker."""
        try:
            pid = int(self.pid_path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_our_broker(pid) else None

    def log_tail(self, lines: int = 40, since: int = 0) -> str:
        """The last lines of ``server.log`` (from byte ``since`` on) and of the JVM's output."""
        parts = []
        for path, offset in ((self.log_path, since), (self.jvm_out_path, 0)):
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset if offset <= path.stat().st_size else 0)
                    text = handle.read().decode("utf-8", errors="replace")
            except OSError:
                continue
            if text.strip():
                parts.append(f"--- {path.name} ---\n{_tail(text, lines)}")
        return "\n".join(parts) or "(the broker wrote no log)"

    # --------------------------------------------------------------- helpers

    def _log_options(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG_PATH}",
            f"-Dkafka.logs.dir={self.home}",
        ]

    def _format_storage(self, java: str, libs: Path, users: dict[str, str] | None) -> None:
        if self.cluster_id_path.is_file():
            cluster_id = self.cluster_id_path.read_text(encoding="utf-8").strip()
        else:
            cluster_id = new_cluster_id()
            self.cluster_id_path.write_text(cluster_id + "\n", encoding="utf-8")
        command = [
            java,
            *_SHORT_LIVED_JVM_OPTIONS,
            *self._log_options(),
            "-cp",
            f"{libs}{os.sep}*",
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(self.properties_path),
            "--ignore-formatted",
        ]
        # The broker authenticates to itself as relais-admin (inter-broker listener) and
        # needs its credential before any client could create one.
        for user, password in (users or {}).items():
            if user in (ADMIN_USER, HUB_USER):
                command += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]
        log.info("kafka.formatting", cluster_id=cluster_id, log_dirs=str(self.log_dirs))
        try:
            done = subprocess.run(
                command,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=_FORMAT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InfrastructureError("Formatting the Kafka storage timed out") from exc
        if done.returncode != 0:
            raise InfrastructureError(
                f"Formatting the Kafka storage failed (exit {done.returncode}):\n"
                f"{_tail(done.stdout + done.stderr, 30)}"
            )

    def _wait_ready(
        self,
        pid: int,
        deadline: float,
        process: subprocess.Popen[bytes] | None,
        log_offset: int = 0,
    ) -> None:
        while True:
            alive = self._is_our_broker(pid)
            exited = process.poll() if process is not None else None
            if exited is not None or not alive:
                self.pid_path.unlink(missing_ok=True)
                code = f" with exit code {exited}" if exited is not None else ""
                raise InfrastructureError(
                    f"The Kafka broker (pid {pid}) died during startup{code}. "
                    f"Last log lines:\n{self.log_tail(since=log_offset)}"
                )
            remaining = deadline - time.monotonic()
            if _answers(self.bootstrap, self.security(),
                        timeout=max(1.0, min(5.0, remaining))):
                return
            if time.monotonic() >= deadline:
                raise InfrastructureError(
                    f"The Kafka broker (pid {pid}) did not answer on {self.bootstrap} in time; "
                    f"it is left running (`relais kafka down` stops it). "
                    f"Last log lines:\n{self.log_tail(since=log_offset)}"
                )
            time.sleep(0.25)

    def _is_our_broker(self, pid: int) -> bool:
        """True if ``pid`` is alive and runs ``kafka.Kafka`` on this data dir's properties."""
        self._reap(pid)
        proc_dir = Path(f"/proc/{pid}")
        if Path("/proc/self").exists():
            wanted = os.fsencode(str(self.properties_path))
            # The command line reads empty for a zombie, and for an instant while the
            # java launcher re-executes itself at startup: look again before deciding.
            for _ in range(40):
                try:
                    raw = (proc_dir / "cmdline").read_bytes()
                    stat = (proc_dir / "stat").read_text(encoding="ascii", errors="replace")
                except OSError:
                    return False
                if raw:
                    args = raw.split(b"\0")
                    return b"kafka.Kafka" in args and wanted in args
                if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]):
                    self._reap(pid)
                    return False
                time.sleep(0.025)
            return False
        try:  # no procfs: trust the pid file
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _reap(self, pid: int) -> None:
        """Collect the exit status of a broker this process started, so it is no zombie."""
        if self._proc is not None and self._proc.pid == pid:
            self._proc.poll()

    def _signal(self, pid: int, signum: signal.Signals) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._is_our_broker(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True


async def grant_hub(bootstrap: str, security: KafkaSecurity, user: str, app_id: str) -> None:
    """Give the hub's ``user`` its ACLs (``relais.kafka.acls.hub_acls``) on any cluster,
    connecting with ``security`` (a super user's). Adding an existing ACL changes nothing."""
    from relais.kafka.acls import create_acls, hub_acls

    started = time.monotonic()
    async with admin_session(bootstrap, security) as admin:
        await create_acls(admin, hub_acls(user, app_id))
    log.info("kafka.hub_acls", user=user, app_id=app_id,
             seconds=round(time.monotonic() - started, 3))


@contextlib.asynccontextmanager
async def admin_session(bootstrap: str, security: KafkaSecurity) -> Any:
    from relais.kafka.clients import admin as admin_client

    admin = admin_client(bootstrap, security=security, request_timeout_ms=30_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


def _main_jar_name() -> str:
    return f"kafka_2.13-{KAFKA_VERSION}.jar"


def _require_tool(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigurationError(
            f"`{name}` was not found on PATH: the local Kafka broker needs {what}. "
            "Or set RELAIS_KAFKA_BOOTSTRAP to use an existing cluster."
        )
    return found


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on a private event loop in a worker thread (caller in a loop or not)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _answers(bootstrap: str, security: KafkaSecurity, timeout: float) -> bool:
    """True when the broker at ``bootstrap`` answers a metadata request listing a live broker.

    Runs aiokafka's admin client on a private event loop in a worker thread,
    so it works whether or not the caller is inside an event loop.
    """
    host, _, port = bootstrap.rpartition(":")
    if not _port_open(host, int(port)):
        return False
    return _run(_describe_cluster(bootstrap, security, timeout))


async def _describe_cluster(bootstrap: str, security: KafkaSecurity, wait_seconds: float) -> bool:
    from aiokafka.errors import KafkaError

    from relais.kafka.clients import admin as admin_client

    admin = admin_client(
        bootstrap, security=security, request_timeout_ms=int(wait_seconds * 1000)
    )
    try:
        async with asyncio.timeout(wait_seconds):
            await admin.start()
            cluster = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    brokers = cluster.get("brokers") or []
    return any(broker.get("node_id") == NODE_ID for broker in brokers)
