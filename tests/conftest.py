"""Session fixtures shared by every test tier.

The integration tiers run against a real Apache Kafka broker: the one named by
``RELAIS_TEST_KAFKA_BOOTSTRAP`` if set, otherwise a ``LocalBroker`` started
once per session on ports 39092/39093 (two free ports if another session holds
those) with its data in the session's tmp dir.
Its jars come from the project's shared cache (``.relais/kafka/libs`` unless
``RELAIS_DATA_DIR`` / ``RELAIS_KAFKA_LIBS_DIR`` say otherwise), so ``make demo``
and ``make test`` download them once. Fixtures are sync and session-scoped;
tests talk to the broker with their own clients on their own event loops.

Every ``LocalBroker`` starts secured (SASL/SCRAM-SHA-512, ACLs; ``RELAIS_KAFKA_AUTH``) and
records its credentials for its bootstrap servers in this process, so clients built by
``relais.kafka.clients`` connect as its super user ``relais-admin`` and hub processes
started with ``relais.kafka.security.hub_security(settings)`` as ``relais-hub``. With
``RELAIS_TEST_KAFKA_BOOTSTRAP``, the ``RELAIS_KAFKA_*`` security settings apply.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.kafka.broker import LocalBroker
from relais.settings import Settings

TEST_KAFKA_PORT = 39092
TEST_KAFKA_CONTROLLER_PORT = 39093
EXTERNAL_BOOTSTRAP_ENV = "RELAIS_TEST_KAFKA_BOOTSTRAP"
REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_kafka_libs_dir() -> Path:
    """The jar cache of the project's default settings, shared by tests and `relais kafka up`."""
    defaults = Settings.from_env()
    if defaults.kafka_libs_dir:
        return Path(defaults.kafka_libs_dir)
    return Path(defaults.data_dir) / "kafka" / "libs"


def local_broker_settings(data_dir: Path, kafka_port: int, controller_port: int) -> Settings:
    """Settings of a throwaway local broker in ``data_dir`` using the shared jar cache."""
    return Settings.from_env(
        data_dir=data_dir,
        kafka_bootstrap="",
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        kafka_libs_dir=str(shared_kafka_libs_dir()),
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like Kafka's acceptor: a closing connection in TIME_WAIT does not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> tuple[int, int]:
    """Two distinct loopback ports free right now (for a broker's client and controller)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return int(first.getsockname()[1]), int(second.getsockname()[1])


def pick_broker_ports() -> tuple[int, int]:
    """39092/39093, or two free ports when another test session already uses those."""
    if _port_free(TEST_KAFKA_PORT) and _port_free(TEST_KAFKA_CONTROLLER_PORT):
        return TEST_KAFKA_PORT, TEST_KAFKA_CONTROLLER_PORT
    return free_port_pair()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """The session's local broker, started once; None when an external cluster is used."""
    if os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip():
        yield None
        return
    settings = local_broker_settings(tmp_path_factory.mktemp("kafka-broker"), *pick_broker_ports())
    broker = LocalBroker(settings)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker | None) -> str:
    """Bootstrap servers of the Kafka cluster integration tests use."""
    if kafka_broker is None:
        return os.environ[EXTERNAL_BOOTSTRAP_ENV].strip()
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def settings_for_tests(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Relais settings pointing at the test cluster, with a throwaway data dir."""
    return Settings.from_env(
        kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path_factory.mktemp("relais-data")
    )


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference``: official schemas and real partner messages (test oracles)."""
    path = REPO_ROOT.parent / "shared" / "reference"
    if not path.is_dir():
        pytest.fail(
            f"Reference material not found at {path}: conformance tests need the official "
            "schemas and partner messages of shared/reference next to the repository."
        )
    return path


@pytest.fixture(scope="module")
def hub_kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of the module's own, for modules that run a hub worker.

    A hub consumes every member's submissions topic by pattern from the earliest
    offset, so two modules' hubs on one broker would process each other's
    submissions. A fresh broker (about 4 s to start) keeps modules independent.
    With an external cluster (RELAIS_TEST_KAFKA_BOOTSTRAP) that cluster is used.
    """
    external = os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    settings = local_broker_settings(tmp_path_factory.mktemp("module-kafka"), *free_port_pair())
    broker = LocalBroker(settings)
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.stop()
