"""Throughput and latency of the hub ingress, against a bare aiokafka loop, in one run.

Run from the repository root::

    .venv/bin/python -m benchmarks.ingress_throughput
    .venv/bin/python -m benchmarks.ingress_throughput --records 2000 --members 5 --size large

On a throwaway broker (free loopback ports, data in a temp dir) it registers
``--members`` members, stores one PDF in the hub worker's blob directory, then
runs two phases over the SAME member topics, one after the other:

hub
    the real hub worker (``relais worker`` subprocess): pattern subscription,
    envelope and blob checks, a notification, a flow event and the forwarded
    acte per record, all in one Kafka transaction with the offsets; plus
    whatever else the worker runs on those outputs.
baseline
    a bare aiokafka loop in its own subprocess (this module with
    ``--baseline-worker``): pattern subscription on the same topics, Avro decode
    with ``AvroCodec``, one Avro notification produced per record, offsets
    committed after each batch; no checks, no transaction, no other output.

Each phase: start the worker, warm it up (one answered submission per member),
then publish ``--records`` valid acte submissions round-robin over the members
(all at once, or ``--rate`` per second) and read every member's notifications
topic (read_committed) until each record is answered. Latency is per record,
from the moment this driver handed it to its producer to the moment it read
the notification (one clock, this process's monotonic clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from benchmarks import (
    BENCH_DEPARTMENT,
    REPO_ROOT,
    BenchmarkError,
    ModuleProcess,
    bench_sirens,
    cpu_seconds,
    fmt,
    hub_env,
    ingress_ready,
    load_line,
    percentile,
    rss_mib,
    run_benchmark,
    start_broker,
    stop_quietly,
    table,
    temp_dir,
    upload_pdf,
    wait_topics_ready,
)
from benchmarks.ladder_roles import batch_outputs
from benchmarks.notification_reader import NotificationReader
from hub.flows import FLOWS
from ops.kafka.broker import LocalBroker
from ops.members import new_member, register_members
from ops.processes import ManagedProcess
from ops.submissions import ActeDraft
from ops.topics import apply_topics
from relais.blobs.model import BlobRef
from relais.errors import InfrastructureError
from relais.flows.ids import flow_id_for
from relais.kafka import clients as kafka_clients
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics import member as member_topics
from topics.catalogue import hub_topics
from topics.member import SUBMISSIONS_PATTERN

APP_ID = "relais-bench-tp"
BASELINE_GROUP = f"{APP_ID}-baseline"  # under the hub's group prefix (ACLs)
BASELINE_MARKER = "baseline.started"

#: --size: (characters of the acte's objet, annexes referencing the stored PDF)
SIZES: dict[str, tuple[int, int]] = {"small": (40, 0), "medium": (250, 3), "large": (499, 10)}


# ------------------------------------------------------------- the baseline


async def baseline_worker(bootstrap: str, group_id: str, max_records: int) -> None:
    """The minimum a consumer of the submissions topics does: decode, answer, commit."""
    codec = AvroCodec()
    consumer = kafka_clients.consumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        metadata_max_age_ms=3000,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    consumer.subscribe(pattern=SUBMISSIONS_PATTERN)
    producer = kafka_clients.producer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    await consumer.start()
    print(BASELINE_MARKER, flush=True)
    handled = 0
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            if not batches:
                continue
            outputs, offsets = batch_outputs(codec, batches, None)
            sends = [await producer.send(topic, value, key=key)
                     for topic, key, value, _headers in outputs]
            await asyncio.gather(*sends)
            await consumer.commit(offsets)
            handled += sum(len(r) for r in batches.values())
    finally:
        await consumer.stop()
        await producer.stop()
        print(f"baseline.stopped handled={handled}", flush=True)


def run_baseline_worker(bootstrap: str, group_id: str, max_records: int) -> int:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await baseline_worker(bootstrap, group_id, max_records)

    asyncio.run(main())
    return 0


# ------------------------------------------------------------------ driving


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    records: int = 0
    answered: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    publish_seconds: float = 0.0
    total_seconds: float = 0.0  # first publish -> last notification read
    latencies_ms: list[float] = field(default_factory=list)
    warmup_seconds: float = 0.0
    start_seconds: float | None = None  # spawn -> ready marker (None: not watched)
    worker_cpu: float | None = None
    broker_cpu: float | None = None
    driver_cpu: float | None = None
    worker_rss: float | None = None

    @property
    def throughput(self) -> float:
        return self.answered / self.total_seconds if self.total_seconds else 0.0


@dataclass(frozen=True)
class Prepared:
    """One submission ready to send."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    flow_id: str


def prepare(
    codec: AvroCodec, sirens: list[str], blob: BlobRef, prefix: str, count: int, size: str,
    first_number: int = 0,
) -> list[Prepared]:
    """``count`` valid acte submissions, round-robin over ``sirens``, encoded in advance;
    their numéros internes count from ``first_number`` (distinct ones, distinct IDActes)."""
    objet_length, annexes = SIZES[size]
    dataschema = dataschema_uri(codec, "ActeSubmission")
    out = []
    for index in range(count):
        siren = sirens[index % len(sirens)]
        submission_id = f"{prefix}-{index}"
        objet = f"Deliberation {submission_id} " + "x" * objet_length
        draft = ActeDraft(
            submission_id=submission_id,
            member_siren=siren,
            nature_code=1,
            matieres=(7, 1),
            numero_interne=f"B{(first_number + index) % 10**9}",
            decision_date=date(2026, 1, 15),
            objet=objet[:objet_length],
            document=blob,
            annexes=tuple((blob, None) for _ in range(annexes)),
        )
        headers = EventHeaders.new(
            source=f"/members/{siren}/back-office",
            type="fr.relais.acts.ActeSubmission",
            subject=submission_id,
            flow_id=None,
            dataschema=dataschema,
        )
        out.append(
            Prepared(
                topic=member_topics.submissions(siren).name,
                key=submission_id.encode("utf-8"),
                value=codec.encode("ActeSubmission", draft.to_record()),
                headers=headers.to_kafka(),
                flow_id=flow_id_for(siren, submission_id),
            )
        )
    return out


class AnswerReader(NotificationReader):
    """Reads every member's notifications topic (read_committed) and timestamps each
    flow's first answer."""

    def __init__(self, bootstrap: str, sirens: list[str], codec: AvroCodec) -> None:
        super().__init__(bootstrap, sirens, codec)
        self.received: dict[str, tuple[float, str]] = {}  # flow id -> (monotonic, kind)

    def observe(self, note: dict[str, Any], record: Any, now: float) -> None:
        self.received.setdefault(note["flow_id"], (now, note["kind"]))

    async def wait_for(self, flow_ids: set[str], limit: float) -> bool:
        """True once every flow id was answered; False after ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while not flow_ids <= self.received.keys():
            self.check_running()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


async def publish(
    producer: AIOKafkaProducer, items: Sequence[Prepared], rate: float = 0.0
) -> dict[str, float]:
    """Send ``items`` (paced at ``rate``/s when > 0); the monotonic send time of each flow."""
    sent: dict[str, float] = {}
    futures = []
    began = time.monotonic()
    for index, item in enumerate(items):
        if rate > 0:
            delay = began + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        sent[item.flow_id] = time.monotonic()
        futures.append(
            await producer.send(item.topic, item.value, key=item.key, headers=item.headers)
        )
    await asyncio.gather(*futures)
    return sent


async def run_phase(
    phase: Phase,
    worker: ManagedProcess,
    ready: str,
    *,
    broker: LocalBroker,
    producer: AIOKafkaProducer,
    reader: AnswerReader,
    warmup: list[Prepared],
    measured: list[Prepared],
    args: argparse.Namespace,
) -> None:
    """Start ``worker``, warm it up, publish ``measured`` and wait for every answer."""
    started = time.monotonic()
    worker.start()
    # Without INFO logs the hub's ready marker never shows: the warm-up tells instead.
    watch_marker = ready != "hub" or args.hub_log_level in ("DEBUG", "INFO")
    while watch_marker and not (
        ingress_ready(worker.output()) if ready == "hub" else BASELINE_MARKER in worker.output()
    ):
        if not worker.running():
            raise BenchmarkError(f"{worker.name} exited during start:\n{worker.output()[-3000:]}")
        if time.monotonic() - started > args.start_timeout:
            raise BenchmarkError(
                f"{worker.name} not started within {args.start_timeout:.0f} s (slow machine? "
                f"raise --start-timeout). Last output:\n{worker.output()[-3000:]}"
            )
        await asyncio.sleep(0.1)
    if watch_marker:
        phase.start_seconds = time.monotonic() - started

    began = time.monotonic()
    await publish(producer, warmup, 0)
    if not await reader.wait_for({w.flow_id for w in warmup}, args.start_timeout):
        missing = len({w.flow_id for w in warmup} - reader.received.keys())
        raise BenchmarkError(
            f"{phase.name}: {missing} of {len(warmup)} warm-up submissions unanswered after "
            f"{args.start_timeout:.0f} s (slow machine? raise --start-timeout). Worker output:\n"
            f"{worker.output()[-3000:]}"
        )
    phase.warmup_seconds = time.monotonic() - began

    worker_cpu = cpu_seconds(worker.pid)
    broker_cpu = cpu_seconds(broker.running_pid())
    driver_cpu = time.process_time()
    flows = {m.flow_id for m in measured}
    print(f"  {phase.name}: publishing {len(measured)} submissions ...", flush=True)
    first = time.monotonic()
    sent = await publish(producer, measured, args.rate)
    phase.publish_seconds = time.monotonic() - first
    complete = await reader.wait_for(flows, args.timeout)
    after_worker, after_broker = cpu_seconds(worker.pid), cpu_seconds(broker.running_pid())
    phase.driver_cpu = time.process_time() - driver_cpu
    if worker_cpu is not None and after_worker is not None:
        phase.worker_cpu = after_worker - worker_cpu
    if broker_cpu is not None and after_broker is not None:
        phase.broker_cpu = after_broker - broker_cpu
    phase.worker_rss = rss_mib(worker.pid)
    answered = {f: reader.received[f] for f in flows if f in reader.received}
    phase.records = len(measured)
    phase.answered = len(answered)
    if not complete:
        raise BenchmarkError(
            f"{phase.name}: only {len(answered)} of {len(measured)} submissions answered within "
            f"--timeout {args.timeout:.0f} s (about {len(answered) / args.timeout:.1f}/s; slow "
            f"machine? lower --records or raise --timeout). Worker output:\n"
            f"{worker.output()[-2000:]}"
        )
    phase.total_seconds = max(t for t, _ in answered.values()) - first
    phase.latencies_ms = [(answered[f][0] - sent[f]) * 1000 for f in answered]
    phase.kinds = Counter(kind for _, kind in answered.values())


async def scenario(
    stack: contextlib.ExitStack, args: argparse.Namespace, broker: LocalBroker, work: Path
) -> list[Phase]:
    bootstrap = broker.bootstrap
    codec = AvroCodec()
    sirens = bench_sirens(args.members, first=91_000_000)
    settings = Settings.from_env(kafka_bootstrap=bootstrap, data_dir=work / "hub", app_id=APP_ID)
    blob = await upload_pdf(settings.blob_dir, "throughput", owners=sirens)

    publisher = Publisher(bootstrap, codec, client_id="bench-ingress-throughput")
    await publisher.start()
    try:
        async with admin_client(bootstrap) as admin:
            await apply_topics(admin, list(hub_topics(APP_ID, FLOWS)))
            await register_members(
                admin,
                publisher,
                [
                    new_member(s, f"Commune de test {s}", BENCH_DEPARTMENT, token=f"bench-{s}")
                    for s in sirens
                ],
            )
            names = [t.name for s in sirens for t in member_topics.member_topics(s)]
            await wait_topics_ready(admin, names, 60)
    except InfrastructureError as exc:
        raise BenchmarkError(str(exc)) from exc
    finally:
        await publisher.stop()

    producer = kafka_clients.producer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    reader = AnswerReader(bootstrap, sirens, codec)
    await producer.start()
    phases: list[Phase] = []
    try:
        await reader.start()

        hub = Phase("hub ingress")
        worker = ManagedProcess(
            "hub worker", ["worker"], hub_env(settings, args.hub_log_level),
            settings.data_dir / "worker.log",
        )
        stack.callback(stop_quietly, worker)
        await run_phase(
            hub, worker, "hub", broker=broker, producer=producer, reader=reader,
            warmup=prepare(codec, sirens, blob, "warm-hub", len(sirens), args.size),
            measured=prepare(codec, sirens, blob, "hub", args.records, args.size),
            args=args,
        )
        stop_quietly(worker)
        phases.append(hub)

        # The baseline's group starts where the hub's records end.
        await commit_end_offsets(bootstrap, BASELINE_GROUP, sirens)
        base = Phase("bare aiokafka loop")
        baseline = ModuleProcess(
            "baseline worker", "benchmarks.ingress_throughput",
            ["--baseline-worker", "--bootstrap", bootstrap, "--group", BASELINE_GROUP],
            # the hub's credentials: the same SASL connection cost as the hub worker
            {**hub_env(settings, args.hub_log_level), "PYTHONPATH": str(REPO_ROOT)},
            work / "baseline.log",
        )
        stack.callback(stop_quietly, baseline)
        await run_phase(
            base, baseline, "baseline", broker=broker, producer=producer, reader=reader,
            warmup=prepare(codec, sirens, blob, "warm-base", len(sirens), args.size),
            measured=prepare(codec, sirens, blob, "base", args.records, args.size),
            args=args,
        )
        stop_quietly(baseline)
        phases.append(base)
    finally:
        await reader.stop()
        await producer.stop()
    return phases


async def commit_end_offsets(bootstrap: str, group_id: str, sirens: list[str]) -> None:
    """Commit the current end of every submissions topic for ``group_id``."""
    tps = [TopicPartition(member_topics.submissions(s).name, 0) for s in sirens]
    consumer = kafka_clients.consumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in tps})
    finally:
        await consumer.stop()


def report(args: argparse.Namespace, phases: list[Phase]) -> str:
    objet, annexes = SIZES[args.size]
    pace = f"{args.rate:g}/s" if args.rate > 0 else "all at once"
    lines = [
        "",
        f"RELAIS INGRESS THROUGHPUT: {args.records} submissions over {args.members} members, "
        f"size {args.size} ({objet}-char objet, {annexes} annexes), published {pace}",
        "",
    ]
    hub = phases[0]
    base = phases[1] if len(phases) > 1 else None

    def ratio(a: float | None, b: float | None) -> str:
        if a is None or b is None or not b:
            return "-"
        return f"{a / b:.2f}x"

    def per_record_ms(cpu: float | None, phase: Phase) -> float | None:
        return cpu / phase.answered * 1000 if cpu is not None and phase.answered else None

    spec: list[tuple[str, float | int | None, float | int | None, int]] = []

    def add(name: str, get: Callable[[Phase], float | int | None], digits: int = 1) -> None:
        spec.append((name, get(hub), get(base) if base else None, digits))

    add("worker start to ready marker, s", lambda p: p.start_seconds, 2)
    add("warm-up (1 per member) answered, s", lambda p: p.warmup_seconds, 2)
    add("records answered", lambda p: p.answered, 0)
    add("publish duration, s", lambda p: p.publish_seconds, 2)
    add("first publish to last answer, s", lambda p: p.total_seconds, 2)
    add("throughput, records/s", lambda p: p.throughput)
    add("latency p50, ms", lambda p: percentile(p.latencies_ms, 50))
    add("latency p95, ms", lambda p: percentile(p.latencies_ms, 95))
    add("latency p99, ms", lambda p: percentile(p.latencies_ms, 99))
    add("latency max, ms", lambda p: max(p.latencies_ms) if p.latencies_ms else None)
    add("worker CPU, s", lambda p: p.worker_cpu, 2)
    add("worker CPU per record, ms", lambda p: per_record_ms(p.worker_cpu, p), 3)
    add("broker CPU, s", lambda p: p.broker_cpu, 2)
    add("broker CPU per record, ms", lambda p: per_record_ms(p.broker_cpu, p), 3)
    add("driver CPU (publish + read), s", lambda p: p.driver_cpu, 2)
    add("worker RSS after, MiB", lambda p: p.worker_rss, 0)

    rows = []
    for name, a, b, digits in spec:
        a_value = None if a is None else float(a)
        b_value = None if b is None else float(b)
        if digits == 0 and a is not None:
            cells = [name, fmt(int(a)), fmt(int(b)) if b is not None else "-"]
        else:
            cells = [name, fmt(a_value, digits), fmt(b_value, digits)]
        rows.append([*cells, ratio(a_value, b_value)])
    lines.append(table(["", hub.name, base.name if base else "baseline", "hub / baseline"], rows))
    for phase in phases:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(phase.kinds.items()))
        lines.append(f"{phase.name}: notifications by kind: {kinds}")
    if hub.kinds.get("ACCEPTED", 0) != hub.answered:
        lines.append("WARNING: the hub did not accept every submission; see the worker log.")
    lines.append(
        "(latency: driver send -> notification read, same clock; with everything published at "
        "once it is mostly queueing behind earlier records)"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingress_throughput",
        description="Hub ingress throughput and latency against a bare aiokafka loop, on a "
        "throwaway broker on free loopback ports.",
    )
    parser.add_argument("--records", type=int, default=5000,
                        help="submissions per phase (default 5000)")
    parser.add_argument("--members", type=int, default=20,
                        help="members the submissions are spread over (default 20)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small",
                        help="submission size: small, medium (3 annexes), large (10 annexes)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="publish this many records/s (default 0: all at once)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds for a phase's records to be answered (default 600)")
    parser.add_argument("--start-timeout", type=float, default=180.0,
                        help="seconds for a worker to start and answer its warm-up (default 180)")
    parser.add_argument("--broker-timeout", type=float, default=180.0,
                        help="seconds for the broker to start (default 180)")
    parser.add_argument("--hub-log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="RELAIS_LOG_LEVEL of the hub worker (default INFO, one line per "
                        "record; above INFO the start time is measured up to the warm-up)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (broker data, worker logs)")
    # Internal: the baseline worker subprocess.
    parser.add_argument("--baseline-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--group", default=BASELINE_GROUP, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.records <= 1_000_000:
        parser.error("--records must be between 1 and 1000000")
    if not 1 <= args.members <= 5000:
        parser.error("--members must be between 1 and 5000")
    if args.baseline_worker and not args.bootstrap:
        parser.error("--baseline-worker needs --bootstrap")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_worker:
        return run_baseline_worker(args.bootstrap, args.group, 500)

    def body(stack: contextlib.ExitStack) -> None:
        work = temp_dir(stack, "relais-bench-ingress-", args.keep)
        broker, seconds = start_broker(stack, work / "broker", args.broker_timeout)
        print(f"Broker ready in {seconds:.1f} s (pid {broker.running_pid()})", flush=True)
        load_before = load_line()
        phases = asyncio.run(scenario(stack, args, broker, work))
        print(report(args, phases))
        print(f"({load_before} at the start, {load_line()} at the end)")

    return run_benchmark(body)


if __name__ == "__main__":
    sys.exit(main())
