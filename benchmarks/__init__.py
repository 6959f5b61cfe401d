"""Benchmarks of Relais against a throwaway local Kafka broker.

Each benchmark is a module run with ``python -m benchmarks.<name>`` from the
repository root (``--help`` lists its knobs). It starts its OWN broker, like the
test suite does (``tests/conftest.py``): data in a temporary directory, fixed
loopback ports picked free at start (never fixed ones: a fixed port inside Linux's
ephemeral range, 32768-60999, can be taken as a client's source port first), broker jars
from the project's shared cache. Everything it
starts (broker, hub worker, helper processes) is stopped on the way out, also on
Ctrl-C, SIGTERM and errors; ``--keep`` leaves the temporary directory (logs) in
place for inspection.

- ``benchmarks.members_scale``: registering many members, checking their topics,
  starting the hub worker with many members.
- ``benchmarks.ingress_throughput``: records/s and latency of the hub ingress
  against a bare aiokafka loop.

This module holds the helpers both share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from ops.demo_documents import minimal_pdf
from ops.kafka.broker import LocalBroker
from ops.processes import ManagedProcess
from relais.blobs.filesystem import FilesystemBlobStore
from relais.blobs.model import BlobRef
from relais.errors import ConfigurationError, InfrastructureError
from relais.identifiers import luhn_sum
from relais.kafka.security import hub_security
from relais.logs import configure_logging
from relais.settings import Settings
from topics.member import siren_of_submissions_topic

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DEPARTMENT = "021"


class BenchmarkError(RuntimeError):
    """A benchmark could not complete (timeout, dead process, unexpected outcome)."""


# ----------------------------------------------------------------- the broker


def shared_kafka_libs_dir() -> Path:
    """The jar cache of the project's default settings (the one tests and `relais kafka up` use)."""
    defaults = Settings.from_env()
    if defaults.kafka_libs_dir:
        return Path(defaults.kafka_libs_dir)
    return Path(defaults.data_dir) / "kafka" / "libs"


def free_port_pair() -> tuple[int, int]:
    """Two distinct loopback ports free right now, for a broker's client and controller.

    Both sockets stay bound until both ports are known, so the two differ; the kernel
    does not hand a port that a listener holds to a client as its source port.
    """
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return int(first.getsockname()[1]), int(second.getsockname()[1])


def broker_settings(data_dir: Path, kafka_port: int, controller_port: int) -> Settings:
    """Settings of a throwaway local broker in ``data_dir`` using the shared jar cache."""
    return Settings.from_env(
        data_dir=data_dir,
        kafka_bootstrap="",
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        kafka_libs_dir=str(shared_kafka_libs_dir()),
    )


def start_broker(
    stack: contextlib.ExitStack, data_dir: Path, timeout: float,
    ports: tuple[int, int] | None = None,
) -> tuple[LocalBroker, float]:
    """Start a broker in ``data_dir`` on ``ports`` (default: two free ones); ``stack`` stops
    it. Returns it and its start seconds."""
    ports = ports or free_port_pair()
    broker = LocalBroker(broker_settings(data_dir, *ports))
    # Registered before start: an interrupt while it boots still stops it.
    stack.callback(broker.stop)
    print(f"Starting a throwaway Kafka broker on 127.0.0.1:{ports[0]} ...", flush=True)
    broker.ensure_jars()
    try:
        seconds = broker.start(timeout=timeout)
    except ConfigurationError as exc:
        raise BenchmarkError(str(exc)) from exc
    except InfrastructureError as exc:
        raise BenchmarkError(
            f"the broker was not ready within {timeout:.0f} s (slow machine? raise "
            f"--broker-timeout): {exc}"
        ) from exc
    return broker, seconds


def temp_dir(stack: contextlib.ExitStack, prefix: str, keep: bool) -> Path:
    """A fresh temporary directory, removed by ``stack`` unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if keep:
        stack.callback(print, f"Kept the benchmark's files in {path}")
    else:
        stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


# --------------------------------------------------------- hub and processes


def hub_env(settings: Settings, log_level: str = "INFO") -> dict[str, str]:
    """The environment of a hub worker subprocess (as ``tests/integration/conftest.py``)."""
    return {
        "RELAIS_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "RELAIS_DATA_DIR": str(settings.data_dir),
        "RELAIS_APP_ID": settings.app_id,
        "RELAIS_LOG_FORMAT": "json",
        "RELAIS_LOG_LEVEL": log_level,
        **hub_security(settings).as_env(),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }


class ModuleProcess(ManagedProcess):
    """A ManagedProcess running ``python -m <module> <args>`` instead of the relais CLI."""

    def __init__(
        self, name: str, module: str, args: list[str], env: dict[str, str], log_path: Path
    ) -> None:
        super().__init__(name, args, env, log_path)
        self.module = module

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env={**os.environ, **self.env},
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )


def stop_quietly(process: ManagedProcess, timeout: float = 20.0) -> float:
    """Stop ``process`` (SIGTERM, then SIGKILL); seconds it took. Never raises."""
    started = time.monotonic()
    try:
        process.stop(timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"warning: stopping {process.name} failed: {exc}", file=sys.stderr)
    return time.monotonic() - started


async def wait_marker(process: ManagedProcess, marker: str, limit: float, hint: str) -> float:
    """Seconds until ``marker`` appears in ``process``'s output (polled every 0.1 s)."""
    started = time.monotonic()
    while marker not in process.output():
        if not process.running():
            raise BenchmarkError(
                f"{process.name} exited before logging {marker!r}:\n{process.output()[-3000:]}"
            )
        if time.monotonic() - started > limit:
            raise BenchmarkError(
                f"{process.name} did not log {marker!r} within {limit:.0f} s ({hint}). "
                f"Last output:\n{process.output()[-3000:]}"
            )
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def ingress_ready(output: str) -> bool:
    """True once a hub worker's log says it is ready (``relais worker ready``, logged once the
    member registry is read and the ingress consumes)."""
    return "relais worker ready" in output


def registry_read(output: str) -> bool:
    """True once a hub worker's log says it has read the member registry."""
    return "members.directory_ready" in output or any(
        '"view.ready"' in line and '"relais.members"' in line for line in output.splitlines()
    )


async def submissions_partitions_assigned(admin: AIOKafkaAdminClient, app_id: str) -> int:
    """Members' submissions partitions assigned in the ingress group of hub ``app_id``.

    The group is ``<app_id>-ingress`` (or, failing that, any ``<app_id>…ingress…``
    group), read with DescribeGroups one group at a time: aiokafka cannot decode a
    description of faust's own group. A group that is rebalancing counts 0.
    """
    try:
        async with asyncio.timeout(10):
            listed = [str(g[0]) for g in await admin.list_consumer_groups()]
    except (KafkaError, TimeoutError):
        return 0
    wanted = f"{app_id}-ingress"
    groups = [wanted] if wanted in listed else [
        g for g in listed if g.startswith(app_id) and "ingress" in g
    ]
    total = 0
    for group_id in groups:
        try:
            async with asyncio.timeout(10):
                responses = await admin.describe_consumer_groups([group_id])
        except (KafkaError, TimeoutError):
            continue
        for response in responses:
            for group in response.groups:
                state, members = group[2], group[5]
                if state != "Stable":
                    continue
                for member in members:
                    raw = member[-1]  # member_assignment is the last field in every version
                    if not raw:
                        continue
                    assignment = ConsumerProtocolMemberAssignment.decode(raw)
                    total += sum(
                        1 for tp in assignment.partitions()
                        if siren_of_submissions_topic(tp.topic) is not None
                    )
    return total


async def wait_topics_ready(admin: AIOKafkaAdminClient, names: Sequence[str], limit: float) -> None:
    """Wait until every topic in ``names`` has a leader for each partition."""
    deadline = time.monotonic() + limit
    pending = list(names)
    while pending:
        ready = set()
        for start in range(0, len(pending), 200):
            try:
                entries = await admin.describe_topics(pending[start : start + 200])
            except KafkaError:
                continue
            for entry in entries:
                partitions = entry.get("partitions") or []
                if entry.get("error_code", 0) == 0 and partitions and all(
                    p.get("leader", -1) >= 0 for p in partitions
                ):
                    ready.add(entry["topic"])
        pending = [n for n in pending if n not in ready]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"{len(pending)} topics still without a leader after {limit:.0f} s "
                f"(e.g. {pending[0]}); is the broker overloaded?"
            )
        await asyncio.sleep(0.2)


async def upload_pdf(blob_dir: Path, label: str, owners: Iterable[str] = ()) -> BlobRef:
    """Store one small valid PDF in a worker's blob directory, owned by ``owners`` (the
    members whose submissions reference it)."""
    store = FilesystemBlobStore(blob_dir)
    ref = await store.put_bytes(
        minimal_pdf(f"Relais benchmark {label}"),
        media_type="application/pdf",
        filename="benchmark.pdf",
    )
    for owner in owners:
        await store.grant(ref.sha256, owner)
    return ref


# ------------------------------------------------------------- measurements


def bench_sirens(count: int, first: int = 90_000_000) -> list[str]:
    """``count`` distinct valid SIRENs (8 digits from ``first`` on, plus the Luhn digit)."""
    sirens = []
    for number in range(first, first + count):
        prefix = f"{number:08d}"
        check = next(d for d in range(10) if luhn_sum(f"{prefix}{d}") % 10 == 0)
        sirens.append(f"{prefix}{check}")
    return sirens


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB, from ``ps``; None when unknown."""
    if pid is None:
        return None
    try:
        done = subprocess.run(
            ["ps", "-o", "rss=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return int(done.stdout.strip()) / 1024
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds used so far by ``pid`` (from /proc), None when unknown."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values``, nearest-rank; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | int | str | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    return f"{value:,.{digits}f}".replace(",", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out += [line(headers), rule, *(line(row) for row in rows)]
    return "\n".join(out)


# ---------------------------------------------------------------- the entry


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def load_line() -> str:
    """The machine's load averages, for the record (other work skews the figures)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def run_benchmark(body: Callable[[contextlib.ExitStack], None]) -> int:
    """Run ``body`` with an ExitStack that stops what it started; returns an exit code.

    Ctrl-C and SIGTERM unwind the stack too (exit 130); a :class:`BenchmarkError`
    is printed without a traceback (exit 1). ``RELAIS_BENCH_LOG_LEVEL`` (default
    WARNING, aiokafka's own retry messages hidden) sets this process's log level.
    """
    level = os.environ.get("RELAIS_BENCH_LOG_LEVEL", "")
    configure_logging("console", level or "WARNING")
    if not level:
        # aiokafka logs its own retries (a new topic's leader not known yet) as errors.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        with _sigterm_raises(), contextlib.ExitStack() as stack:
            body(stack)
    except KeyboardInterrupt:
        print("\nInterrupted: everything the benchmark started was stopped.", file=sys.stderr)
        return 130
    except BenchmarkError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    return 0
