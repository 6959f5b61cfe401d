"""The test session's local brokers, each started before a module asks for it.

A secured local broker takes 5–10 s to be ready (storage format, JVM start, readiness, the
hub's ACLs), and about fourteen modules each need one of their own: a hub consumes every
member's submissions topic by pattern from the earliest offset (two modules' hubs on one
broker would read each other's records), and fault tests stop and restart theirs. The pool
starts the next broker in a background thread while the current module runs, and warms it
up (its internal topics created), so a module waits only for what is left of that. A broker
given back is stopped in the background too. The pool starts no more brokers than the
collected tests will take (see :func:`brokers_wanted`): a run of unit tests starts none.

Every broker is a plain ``LocalBroker`` with its own data dir and ports, secured like the
demo's. Ports are picked below the kernel's ephemeral range, so they cannot collide with
the ports tests get from the OS (sandboxes, APIs, client connections) while a broker starts
in the background.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import structlog

from ops.kafka.broker import LocalBroker
from relais.settings import Settings

log = structlog.get_logger(__name__)

MODULE_BROKER_FIXTURES = ("hub_kafka_bootstrap", "fault_broker")
"""Module-scoped fixtures that each take a broker of their own from the pool."""
SESSION_BROKER_FIXTURE = "kafka_broker"
"""The session's shared broker (one for the whole run), also taken from the pool."""

_PORT_RANGE = (20000, 32000)
"""Below Linux's default ephemeral range (32768-60999), so no port the OS hands out."""


ALWAYS_LOCAL_FIXTURES = ("fault_broker",)
"""Fixtures that take a local broker even with an external cluster (their tests stop it)."""


def brokers_wanted(items: Iterable[tuple[str, Iterable[str]]], *, external: bool) -> int:
    """How many brokers tests will take: one per (module, module-broker fixture) pair they
    use, plus one for the session broker; with an ``external`` cluster, only those of
    :data:`ALWAYS_LOCAL_FIXTURES`. ``items``: (module name, fixture names) per test."""
    per_module = ALWAYS_LOCAL_FIXTURES if external else MODULE_BROKER_FIXTURES
    module_brokers: set[tuple[str, str]] = set()
    session = False
    for module, fixtures in items:
        names = set(fixtures)
        module_brokers |= {(module, name) for name in per_module if name in names}
        session = session or (not external and SESSION_BROKER_FIXTURE in names)
    return len(module_brokers) + int(session)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like Kafka's acceptor: a closing connection in TIME_WAIT does not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def broker_port_pair() -> tuple[int, int]:
    """Two adjacent loopback ports, free now, below the ephemeral range."""
    for _ in range(200):
        port = random.randrange(_PORT_RANGE[0], _PORT_RANGE[1], 2)
        if _port_free(port) and _port_free(port + 1):
            return port, port + 1
    raise RuntimeError(f"no two free ports found in {_PORT_RANGE}")


WARM_UP_ID = "relais-tests-warm-up"
"""The transactional id and consumer group the pool uses to warm a broker up."""


def _warm_up(bootstrap: str) -> None:
    """Create the broker's internal topics now, in the background: a fresh broker creates
    ``__transaction_state`` and ``__consumer_offsets`` (50 partitions each) for the first
    transactional producer and the first consumer group, 2–4 s the module's first hub
    worker would otherwise wait at its start."""
    from relais.kafka import clients

    async def warm() -> None:
        producer = clients.producer(bootstrap, transactional_id=WARM_UP_ID,
                                    enable_idempotence=True)
        await producer.start()
        await producer.stop()
        consumer = clients.consumer(bootstrap_servers=bootstrap, group_id=WARM_UP_ID,
                                    enable_auto_commit=False)
        consumer.subscribe(pattern=r"^relais\.tests\.warm-up$")
        await consumer.start()
        await consumer.stop()

    started = time.monotonic()
    asyncio.run(warm())
    log.info("tests.broker_warmed_up", bootstrap=bootstrap,
             seconds=round(time.monotonic() - started, 2))


class BrokerPool:
    """Started brokers handed out one at a time, the next one starting in the background.

    ``settings_for(data_dir, port, controller_port)`` gives a broker's settings.
    """

    def __init__(self, base_dir: Path, wanted: int,
                 settings_for: Callable[[Path, int, int], Settings]) -> None:
        self._base_dir = base_dir
        self._remaining = wanted
        self._settings_for = settings_for
        self._spare: Future[LocalBroker] | None = None
        self._started = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-pool")
        self._stopper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-stop")
        self._stopping: list[Future[bool]] = []

    def prepare(self) -> None:
        """Start the next broker in the background if one will still be taken."""
        with self._lock:
            if self._spare is None and self._remaining > 0:
                self._spare = self._executor.submit(self._start_one)

    def take(self) -> LocalBroker:
        """A running broker (the one started in the background, or a new one); the caller
        gives it back to :meth:`release`. The next one starts in the background if more
        will be taken."""
        waited = time.monotonic()
        with self._lock:
            spare, self._spare = self._spare, None
            self._remaining = max(0, self._remaining - 1)
        broker = spare.result() if spare is not None else self._start_one()
        log.info("tests.broker_taken", bootstrap=broker.bootstrap,
                 waited_seconds=round(time.monotonic() - waited, 2))
        self.prepare()
        return broker

    def release(self, broker: LocalBroker) -> None:
        """Stop a taken broker in the background (1-3 s the next module need not wait);
        :meth:`close` waits for it and fails if it could not be stopped."""
        with self._lock:
            self._stopping.append(self._stopper.submit(broker.stop))

    def close(self) -> None:
        """Stop a broker started for nobody (a run stopped early), wait for the brokers
        being stopped, and end the pool's threads."""
        with self._lock:
            spare, self._spare = self._spare, None
            self._remaining = 0
            stopping, self._stopping = self._stopping, []
        if spare is not None:
            try:
                spare.result().stop()
            except Exception as exc:  # its start failed: nothing runs
                log.warning("tests.spare_broker_failed", error=str(exc))
        self._executor.shutdown(wait=True)
        self._stopper.shutdown(wait=True)
        for stopped in stopping:
            stopped.result()  # raises what a stop raised: a broker left running

    def _start_one(self) -> LocalBroker:
        """A started broker in a new data dir; once more on fresh ports if the first start
        fails (a port taken between the check and the broker's bind)."""
        for attempt in (1, 2):
            with self._lock:
                self._started += 1
                data_dir = self._base_dir / f"broker-{self._started}"
            data_dir.mkdir(parents=True)
            broker = LocalBroker(self._settings_for(data_dir, *broker_port_pair()))
            try:
                broker.start()
                _warm_up(broker.bootstrap)
            except Exception as exc:
                broker.stop()
                if attempt == 2:
                    raise
                log.warning("tests.broker_start_retried", error=str(exc)[:500])
                continue
            return broker
        raise AssertionError("unreachable")
