"""Session fixtures shared by every test tier.

The integration tiers run against a real Apache Kafka broker: the one named by
``RELAIS_TEST_KAFKA_BOOTSTRAP`` if set, otherwise ``LocalBroker`` s from the session's
:class:`~tests.broker_pool.BrokerPool`: one shared by the session (``kafka_broker``) and
one of its own for each module that runs a hub or stops its broker
(``hub_kafka_bootstrap``, ``fault_broker``). The pool starts the next broker in the
background while a module runs, and only as many as the collected tests take.
Their jars come from the project's shared cache (``.relais/kafka/libs`` unless
``RELAIS_DATA_DIR`` / ``RELAIS_KAFKA_LIBS_DIR`` say otherwise), so ``make demo``
and ``make test`` download them once. Fixtures are sync;
tests talk to the broker with their own clients on their own event loops.

Every ``LocalBroker`` starts secured (SASL/SCRAM-SHA-512, ACLs; ``RELAIS_KAFKA_AUTH``) and
records its credentials for its bootstrap servers in this process, so clients built by
``relais.kafka.clients`` connect as its super user ``relais-admin`` and hub processes
started with ``relais.kafka.security.hub_security(settings)`` as ``relais-hub``. With
``RELAIS_TEST_KAFKA_BOOTSTRAP``, the ``RELAIS_KAFKA_*`` security settings apply.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.kafka.broker import LocalBroker
from relais.settings import Settings
from tests.broker_pool import BrokerPool, brokers_wanted

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


def free_port_pair() -> tuple[int, int]:
    """Two distinct loopback ports free right now (for a broker's client and controller)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return int(first.getsockname()[1]), int(second.getsockname()[1])


def _external_bootstrap() -> str:
    return os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()


_BROKERS_WANTED = pytest.StashKey[int]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Count the brokers the collected tests will take (the pool starts no more)."""
    session.config.stash[_BROKERS_WANTED] = brokers_wanted(
        ((item.module.__name__ if item.module is not None else item.nodeid,
          getattr(item, "fixturenames", ()))
         for item in session.items
         if isinstance(item, pytest.Function)),
        external=bool(_external_bootstrap()),
    )


def _interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the teardown finish
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def broker_pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerPool | None]:
    """The session's local brokers (None when the collected tests take none); the first one
    starts in the background from the first test on. A SIGTERM to the run meanwhile becomes
    a KeyboardInterrupt, so the teardowns still stop every broker started."""
    wanted = request.config.stash.get(_BROKERS_WANTED, 0)
    if wanted == 0:
        yield None
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    pool = BrokerPool(tmp_path_factory.mktemp("brokers"), wanted, local_broker_settings)
    pool.prepare()
    try:
        yield pool
    finally:
        pool.close()
        signal.signal(signal.SIGTERM, previous)


def _pool(request: pytest.FixtureRequest) -> BrokerPool:
    pool: BrokerPool | None = request.getfixturevalue("broker_pool")
    if pool is None:  # only if the collection counted none: start one on demand
        pool = BrokerPool(request.getfixturevalue("tmp_path_factory").mktemp("brokers"), 1,
                          local_broker_settings)
        request.addfinalizer(pool.close)
    return pool


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[LocalBroker | None]:
    """The session's shared local broker; None when an external cluster is used."""
    if _external_bootstrap():
        yield None
        return
    pool = _pool(request)
    broker = pool.take()
    try:
        yield broker
    finally:
        pool.release(broker)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalBroker | None) -> str:
    """Bootstrap servers of the Kafka cluster integration tests use."""
    if kafka_broker is None:
        return _external_bootstrap()
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
def hub_kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker of the module's own, for modules that run a hub worker.

    A hub consumes every member's submissions topic by pattern from the earliest
    offset, so two modules' hubs on one broker would process each other's
    submissions. A fresh broker from the pool (started in the background while the
    previous module ran) keeps modules independent.
    With an external cluster (RELAIS_TEST_KAFKA_BOOTSTRAP) that cluster is used.
    """
    external = _external_bootstrap()
    if external:
        yield external
        return
    pool = _pool(request)
    broker = pool.take()
    try:
        yield broker.bootstrap
    finally:
        pool.release(broker)


@pytest.fixture(scope="module")
def fault_broker(request: pytest.FixtureRequest) -> Iterator[LocalBroker]:
    """A local broker of the module's own that a test may stop and start again (from the
    pool, even with RELAIS_TEST_KAFKA_BOOTSTRAP: a test must not stop a shared cluster).

    A SIGTERM to the test run becomes a KeyboardInterrupt meanwhile, so the fixtures'
    teardown still stops the broker, the sandbox and the workers they started.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        pool = _pool(request)
        broker = pool.take()
    except BaseException:
        signal.signal(signal.SIGTERM, previous)
        raise
    try:
        yield broker
    finally:
        pool.release(broker)
        signal.signal(signal.SIGTERM, previous)
