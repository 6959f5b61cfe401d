"""The benchmark ladder: the bare-loop limit, the hub's stages one by one and the acts
flow end to end, side by side in one run.

Run from the repository root (``make bench`` runs the defaults)::

    .venv/bin/python -m benchmarks.ladder
    .venv/bin/python -m benchmarks.ladder --records 4000 --members 50 --partitions 6 \\
        --workers 2 --json ladder.json

It starts a throwaway broker (free loopback ports, SASL/SCRAM and ACLs as configured,
on by default), registers ``--members`` members whose TdT is the sandbox TdT (mTLS,
acknowledging at once, no added latency), stores one PDF, publishes ``--records``
acte submissions over the members' topics, then drains them rung by rung, each rung
in a child process of its own (``benchmarks.ladder_roles``):

L1   a bare aiokafka loop forwarding each submission as one notification
     (batches, sends not awaited one by one, acks=all, offsets committed per batch);
L1b  the same loop doing the hub's durable I/O: per input, the records the hub's
     ingress wrote per input in this run, read back from its committed outputs (as
     many, values of the same sizes, headers of the same names and value sizes: every
     hub record carries CloudEvents headers), one Kafka transaction per batch,
     read_committed; the baseline of the "L2 ingress >= 0.8 x L1b" target. ``L1b (no
     headers)`` (rung ``l1b-noheaders``) sends the same records without headers;
L2   each hub stage alone, built from the flow declarations by the composition root:
     the ingress over the submissions, then acts-validation over what the ingress
     forwarded, acts-delivery (posting to the sandbox TdT) over what validation
     forwarded, acts-status (with the delay forwarders) over the polls delivery queued;
L3   the whole worker (``relais worker``, ``--workers`` of them): ``--l3-records`` new
     actes published at once (saturation: actes/s to the last *acknowledged*), then
     actes published at half that rate for ``--l3-seconds`` (p50/p99 from publish to
     the *posted* and to the *acknowledged* notification). Poll tiers are shortened
     to the shortest delay tier (5 s), which bounds publish → acknowledged from below.

Rungs L1-L2 are measured from the end of their first batch (connection and group
join excluded) to their last record. CPU per record is the child's own CPU (or the
workers') and the broker's over the same window; RSS is each process's peak. The
report ends with issue 12's targets this run measures, each met or not met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from benchmarks import (
    REPO_ROOT,
    BenchmarkError,
    ModuleProcess,
    bench_sirens,
    cpu_seconds,
    fmt,
    load_line,
    percentile,
    run_benchmark,
    start_broker,
    stop_quietly,
    table,
    temp_dir,
    upload_pdf,
)
from benchmarks.hub_setup import (
    POLL_TIER,
    bench_hub,
    create_mirrors,
    provision,
    start_sandbox_tdt,
)
from benchmarks.ingress_throughput import SIZES, Prepared, prepare, publish
from benchmarks.ladder_roles import READY_MARK, RESULT_MARK
from benchmarks.ladder_targets import (
    INGRESS_VS_L1,
    INGRESS_VS_L1B,
    L3_ACTES_PER_SECOND,
    POSTED_P99_MS,
    WORKER_RSS_MIB,
    Target,
    ratio,
    target_lines,
)
from benchmarks.notification_reader import NotificationReader
from benchmarks.output_shape import OutputShape, ShapeMeter, is_member_family, shape_summary
from hub.flows import FLOWS
from ops.kafka.broker import LocalBroker
from ops.members import Registration
from ops.processes import ManagedProcess
from ops.stack import sandbox_member
from relais.errors import InfrastructureError
from relais.flows.kit import stage_inputs
from relais.kafka import clients as kafka_clients
from relais.kafka.admin import admin_client
from relais.logs import READY_LINE
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics
from topics.acts import ACTS_DELIVERY, ACTS_STATUS, ACTS_SUBMITTED
from topics.catalogue import FLOW_EVENTS
from topics.delays import TIERS

APP_ID = "relais-bench-ladder"
STAGES = ("ingress", "acts-validation", "acts-delivery", "acts-status")

L1 = "L1 bare loop"
#: The baseline of the "≥ 0.8 × L1b" target: the hub's ingress outputs, headers included.
L1B = "L1b bare durable"
L1B_BARE = "L1b (no headers)"
INGRESS = "L2 ingress"
#: What ``--rungs`` takes (the ingress always runs; "none": only the ingress).
RUNG_NAMES = {"l1", "l1b", "l1b-noheaders", "ingress", "validation", "delivery", "status",
              "none"}


@dataclass
class Rung:
    """One line of the table."""

    name: str
    what: str
    records: int = 0
    per_second: float = 0.0
    cpu_ms: float | None = None  # process CPU per record
    broker_cpu_ms: float | None = None
    sandbox_cpu_ms: float | None = None  # the sandbox TdT's CPU per record (partner side)
    peak_rss_mib: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ladder:
    rungs: list[Rung] = field(default_factory=list)
    fanout: float = 0.0
    shape: OutputShape | None = None
    broker_peak_rss_mib: float | None = None
    sandbox_peak_rss_mib: float | None = None
    per_acte: dict[str, Any] = field(default_factory=dict)


def peak_rss_mib(pid: int | None) -> float | None:
    """The peak resident memory (VmHWM) of ``pid`` in MiB; None when unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


async def count_committed(bootstrap: str, topics: Sequence[str]) -> int:
    """Committed records on ``topics`` (every partition), read to the end."""
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      isolation_level="read_committed",
                                      max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        count = 0
        while await _behind(consumer, tps, ends):
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                count += len(records)
        return count
    finally:
        await consumer.stop()


async def _behind(consumer: Any, tps: list[TopicPartition],
                  ends: dict[TopicPartition, int]) -> bool:
    for tp in tps:
        if await consumer.position(tp) < ends[tp]:
            return True
    return False


async def _partitions(consumer: Any, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"no partitions known for {topic}")


async def commit_end(bootstrap: str, group_id: str, topic: str) -> None:
    """Commit the current end of ``topic`` for ``group_id`` (its backlog is not measured)."""
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, group_id=group_id,
                                      enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in tps})
    finally:
        await consumer.stop()


class StateReader(NotificationReader):
    """Reads every member's notifications (read_committed): when each flow was first
    seen in each state (``seen``: this process's monotonic clock) and, per state, the
    notification's record timestamp (``stamped``: wall-clock ms the stage's producer
    stamped on it when it sent it inside its transaction) and the wall-clock ms it was
    read (``read_at``): the per-hop split of :func:`hop_latencies`."""

    def __init__(self, bootstrap: str, sirens: list[str], codec: AvroCodec) -> None:
        super().__init__(bootstrap, sirens, codec)
        self.seen: dict[str, dict[str, float]] = {}
        self.stamped: dict[str, dict[str, float]] = {}
        self.read_at: dict[str, dict[str, float]] = {}

    def observe(self, note: dict[str, Any], record: Any, now: float) -> None:
        flow, state = note["flow_id"], note["state"]
        if state in self.seen.get(flow, {}):
            return
        self.seen.setdefault(flow, {})[state] = now
        self.stamped.setdefault(flow, {})[state] = float(record.timestamp)
        self.read_at.setdefault(flow, {})[state] = time.time() * 1000

    async def wait(self, flows: set[str], state: str, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while any(state not in self.seen.get(f, {}) for f in flows):
            self.check_running()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


#: The acts flow's states from publish to *posted*, each written by one stage (the
#: notification of the state goes in that stage's transaction).
HOPS = (("ingress", "received"), ("validation", "validated"), ("delivery", "posted"))


def hop_latencies(reader: StateReader, sent_wall_ms: dict[str, float]) -> dict[str, Any]:
    """Per stage between publish and *posted*, p50/p99 in ms of:

    - ``<stage> wait+handle``: from the previous state's notification being readable
      (publish, for the ingress) to the stage's producer stamping this state's
      notification: the stage's fetch, its wait behind the batch in hand, its handling
      of the batch the acte was in;
    - ``<stage> commit+read``: from that stamp to the notification being read by a
      read_committed consumer: the rest of the batch's sends, the transaction's commit,
      the markers, and a consumer's fetch.

    Record timestamps are the producers' wall clock, on this same machine."""
    parts: dict[str, list[float]] = {}
    for flow, sent in sent_wall_ms.items():
        stamped = reader.stamped.get(flow, {})
        read = reader.read_at.get(flow, {})
        before = sent
        for stage, state in HOPS:
            if state not in stamped or state not in read:
                break
            parts.setdefault(f"{stage} wait+handle", []).append(stamped[state] - before)
            parts.setdefault(f"{stage} commit+read", []).append(read[state] - stamped[state])
            before = read[state]
    return {name: {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
            for name, values in parts.items()}


async def end_offsets_of(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of ``topics`` (data records and transaction
    markers both take an offset)."""
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(await _partitions(consumer, t))]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def scan_between(bootstrap: str, starts: dict[TopicPartition, int],
                       ends: dict[TopicPartition, int],
                       visit: Callable[[TopicPartition, ConsumerRecord[Any, Any]], None],
                       ) -> None:
    """Hand ``visit`` every committed data record between ``starts`` and ``ends``
    (read_committed, so transaction markers and aborted records are not seen)."""
    moved = [tp for tp in ends if ends[tp] > starts.get(tp, 0)]
    if not moved:
        return
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      isolation_level="read_committed",
                                      max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(moved)
        for tp in moved:
            consumer.seek(tp, starts.get(tp, 0))
        deadline = time.monotonic() + 60
        while await _behind(consumer, moved, ends) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500,
                                                       max_records=5000)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        visit(tp, record)
    finally:
        await consumer.stop()


async def count_between(bootstrap: str, starts: dict[TopicPartition, int],
                        ends: dict[TopicPartition, int]) -> dict[str, int]:
    """Committed data records per topic between ``starts`` and ``ends``."""
    counts: dict[str, int] = {}

    def count(tp: TopicPartition, _record: ConsumerRecord[Any, Any]) -> None:
        counts[tp.topic] = counts.get(tp.topic, 0) + 1

    await scan_between(bootstrap, starts, ends, count)
    return counts


async def measure_shape(bootstrap: str, inputs: Sequence[str], outputs: Sequence[str],
                        starts: dict[TopicPartition, int], count: int) -> OutputShape:
    """The shape of what the ingress wrote on ``outputs`` since ``starts`` for the
    ``count`` submissions on ``inputs`` (read in full: the ladder's only submissions
    before L3)."""
    meter = ShapeMeter()
    await scan_between(bootstrap, {}, await end_offsets_of(bootstrap, inputs),
                       lambda _tp, r: meter.add_input(r.value, r.headers))
    await scan_between(bootstrap, starts, await end_offsets_of(bootstrap, outputs),
                       lambda tp, r: meter.add_output(tp.topic, r.value, r.headers))
    return meter.shape(count)


def worker_transactions(log_path: Path) -> dict[str, int]:
    """Transactions (and outputs) each stage runner and delay forwarder of a stopped
    worker committed, from its ``stage.stopped`` and ``delay.stopped`` log lines."""
    found: dict[str, int] = {}
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        if '"stage.stopped"' not in line and '"delay.stopped"' not in line:
            continue
        try:
            entry = json.loads(line[line.index("{"):])
        except ValueError:
            continue
        name = entry.get("stage") or f"delay-{entry.get('tier')}"
        found[name] = found.get(name, 0) + int(entry.get("transactions") or 0)
    return found


# ---------------------------------------------------------------- the driver


class Driver:
    def __init__(self, stack: contextlib.ExitStack, args: argparse.Namespace,
                 broker: LocalBroker, work: Path) -> None:
        self.stack = stack
        self.args = args
        self.broker = broker
        self.work = work
        self.codec = AvroCodec()
        self.sirens = bench_sirens(args.members, first=92_000_000)
        self.settings, self.hub = bench_hub(broker, work, APP_ID, args.log_level)
        self.registrations: list[Registration] = []
        self.ladder = Ladder()
        self._numbers = 0

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    async def setup(self) -> None:
        self.registrations = [sandbox_member(self.settings, s, f"Commune de test {s}", "021")
                              for s in self.sirens]
        await provision(self.bootstrap, self.codec, APP_ID, self.registrations,
                        client_id="bench-ladder", partitions=self.args.partitions)
        self.stack.callback(self.hub.stop)
        print("Starting the sandbox TdT ...", flush=True)
        start_sandbox_tdt(self.hub, self.registrations)
        self.blob = await upload_pdf(self.settings.blob_dir, "ladder", owners=self.sirens)

    def sandbox_pid(self) -> int | None:
        sandbox = self.hub.processes.get("sandbox")
        return sandbox.pid if sandbox is not None else None

    def producer(self) -> AIOKafkaProducer:
        return kafka_clients.producer(bootstrap_servers=self.bootstrap, enable_idempotence=True,
                                      acks="all", linger_ms=5)

    def items(self, prefix: str, count: int) -> list[Prepared]:
        """``count`` new submissions, with numéros internes never used before in this run."""
        first = self._numbers
        self._numbers += count
        return prepare(self.codec, self.sirens, self.blob, prefix, count, self.args.size,
                       first_number=first)

    async def fill(self, prefix: str, count: int) -> list[Prepared]:
        items = self.items(prefix, count)
        producer = self.producer()
        await producer.start()
        try:
            await publish(producer, items)
        finally:
            await producer.stop()
        return items

    async def role(self, name: str, role: str, count: int, what: str,
                   **options: Any) -> Rung:
        """Run one child role until it drained ``count`` records."""
        partner = self.sandbox_pid() if role.startswith("stage:") else None  # bare loops: none
        args = ["--role", role, "--count", str(count), "--bootstrap", self.bootstrap,
                "--broker-pid", str(self.broker.running_pid() or 0),
                "--sandbox-pid", str(partner or 0)]
        if self.args.profile is not None:
            self.args.profile.mkdir(parents=True, exist_ok=True)
            options["profile"] = self.args.profile / f"{role.replace(':', '-')}.prof"
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        env = {**self.hub.env(), "PYTHONPATH": str(REPO_ROOT)}
        slug = role.replace(":", "-")
        process = ModuleProcess(name, "benchmarks.ladder_roles", args, env,
                                self.work / "logs" / f"{slug}.log")
        self.stack.callback(stop_quietly, process)
        print(f"  {name}: draining {count} records ...", flush=True)
        process.start()
        deadline = time.monotonic() + self.args.timeout
        while process.running():
            if time.monotonic() > deadline:
                stop_quietly(process)
                raise BenchmarkError(f"{name} did not drain {count} records within "
                                     f"{self.args.timeout:.0f} s:\n{process.output()[-3000:]}")
            await asyncio.sleep(0.2)
        output = process.output()
        line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_MARK)), None)
        if line is None or READY_MARK not in output:
            raise BenchmarkError(f"{name} gave no result:\n{output[-3000:]}")
        result = json.loads(line.removeprefix(RESULT_MARK))
        records = int(result["records"]) or 1
        rung = Rung(name, what, records=int(result["records"]),
                    per_second=result["records"] / result["seconds"] if result["seconds"] else 0,
                    cpu_ms=result["cpu_seconds"] / records * 1000,
                    broker_cpu_ms=(result["broker_cpu_seconds"] / records * 1000
                                   if result["broker_cpu_seconds"] is not None else None),
                    sandbox_cpu_ms=(result["sandbox_cpu_seconds"] / records * 1000
                                    if result.get("sandbox_cpu_seconds") else None),
                    peak_rss_mib=result["peak_rss_mib"],
                    extra={"seconds": result["seconds"], "failed": result["failed"]})
        if result.get("sent"):
            rung.extra["sent"] = result["sent"]
        self.ladder.rungs.append(rung)
        return rung

    async def rungs_l1_l2(self) -> None:
        n = self.args.records
        print(f"Publishing {n} submissions over {len(self.sirens)} members ...", flush=True)
        await self.fill("lad", n)
        inputs = [member_topics.submissions(s).name for s in self.sirens]
        # the ingress's outputs: whatever it writes, wherever (it runs alone here)
        outputs = [t for t in await self.data_topics() if t not in inputs]
        before = await end_offsets_of(self.bootstrap, outputs)
        await self.role(INGRESS, "stage:ingress", n, "hub ingress stage")
        wanted = set(self.args.rungs.split(","))
        shape = await measure_shape(self.bootstrap, inputs, outputs, before, n)
        self.ladder.shape = shape
        self.ladder.fanout = shape.outputs_per_input
        mirrored = {s.topic for s in shape.slots if not is_member_family(s.topic)}
        await create_mirrors(self.bootstrap, APP_ID, {
            topic: sum(1 for tp in before if tp.topic == topic) for topic in mirrored})
        path = self.work / "l1b-shape.json"
        path.write_text(shape.to_json(), encoding="utf-8")
        if "l1" in wanted:
            await self.role(L1, "l1", n, "1 output, acks=all, commit per batch",
                            group=f"{APP_ID}-bench-l1")
        what = (f"{shape.outputs_per_input:.2f} outputs/input, 1 transaction per batch, "
                f"value {shape.value_bytes_per_output:.0f} B")
        if "l1b" in wanted:
            rung = await self.role(
                L1B, "l1b", n, f"{what}, {shape.headers_per_output:.1f} headers "
                f"{shape.header_bytes_per_output:.0f} B per output",
                group=f"{APP_ID}-bench-l1b", shape=path)
            rung.extra["shape"] = shape_summary(shape)
        if "l1b-noheaders" in wanted:
            await self.role(L1B_BARE, "l1b", n, f"{what}, no headers",
                            group=f"{APP_ID}-bench-l1b-noheaders", shape=path, no_headers=1)
        # The limits first.
        self.ladder.rungs.sort(key=lambda r: not r.name.startswith("L1"))
        if "validation" not in wanted:
            return
        validation_in = await count_committed(self.bootstrap, [ACTS_SUBMITTED.name])
        await self.role("L2 acts-validation", "stage:acts-validation", validation_in,
                        "checks, IDActe, classification")
        delivery_in = await count_committed(self.bootstrap, [ACTS_DELIVERY.name])
        if delivery_in < validation_in:
            print(f"  note: validation forwarded {delivery_in} of {validation_in}", flush=True)
        if "delivery" not in wanted:
            return
        await self.role("L2 acts-delivery", "stage:acts-delivery", delivery_in,
                        "journal + post to the sandbox TdT")
        if "status" not in wanted:
            return
        polls = await count_committed(self.bootstrap, [TIERS[0].topic.name])
        await self.role("L2 acts-status", "stage:acts-status", polls,
                        f"delay forwarders + status poll ({POLL_TIER} tier)")
        status_out = await count_committed(self.bootstrap, [ACTS_STATUS.name])
        self.ladder.rungs[-1].extra["status_inputs"] = status_out

    def start_workers(self, count: int) -> list[ManagedProcess]:
        workers = []
        for index in range(count):
            name = f"l3-{count}w-worker-{index + 1}"
            env = {**self.hub.env(), "RELAIS_WORKER_ID": f"bench-{name}"}
            process = ManagedProcess(name, ["worker"], env, self.work / "logs" / f"{name}.log")
            self.stack.callback(stop_quietly, process)
            process.start()
            workers.append(process)
        for process in workers:
            try:
                process.wait_for(READY_LINE, timeout=self.args.start_timeout)
            except InfrastructureError as exc:
                raise BenchmarkError(str(exc)) from exc
        print(f"  worker pids: {', '.join(str(p.pid) for p in workers)}", flush=True)
        return workers

    async def assignment(self) -> dict[str, list[list[str]]]:
        """Each acts stage group's partitions, one list per consumer (worker)."""
        groups = {stage: f"{APP_ID}-{stage}" for stage in STAGES}
        out: dict[str, list[list[str]]] = {}
        async with admin_client(self.bootstrap) as admin:
            for stage, group_id in groups.items():
                try:
                    responses = await admin.describe_consumer_groups([group_id])
                except KafkaError:
                    continue
                members = [m for r in responses for g in r.groups for m in g[5]]
                out[stage] = sorted(
                    sorted(f"{tp.topic.rsplit('.', 1)[-1]}-{tp.partition}" for tp in
                           ConsumerProtocolMemberAssignment.decode(m[-1]).partitions())
                    for m in members if m[-1]
                )
        return out

    async def rung_l3(self, worker_count: int, *, latency: bool) -> None:
        n = self.args.l3_records
        # The flow-state agent's group (faust's, named after the app) and every stage's
        # start after the records of earlier rungs (a rung left out, e.g. `--rungs none`,
        # leaves its input behind): their backlog is not this rung's work.
        await commit_end(self.bootstrap, APP_ID, FLOW_EVENTS.name)
        for stage, topic in stage_inputs(FLOWS).items():
            await commit_end(self.bootstrap, f"{APP_ID}-{stage}", topic)
        for delay in TIERS:
            await commit_end(self.bootstrap, f"{APP_ID}-delay-{delay.label}",
                             delay.topic.name)
        counted = await self.data_topics() if worker_count == 1 else []
        offsets0 = await end_offsets_of(self.bootstrap, counted) if counted else {}
        actes = 0
        print(f"L3: starting {worker_count} worker(s) ...", flush=True)
        workers = self.start_workers(worker_count)
        reader = StateReader(self.bootstrap, self.sirens, self.codec)
        await reader.start()
        producer = self.producer()
        await producer.start()
        try:
            # warm-up: one acte per member, end to end
            warm = self.items(f"l3w{worker_count}warm", len(self.sirens))
            actes += len(warm)
            await publish(producer, warm)
            if not await reader.wait({w.flow_id for w in warm}, "acknowledged",
                                     self.args.timeout):
                raise BenchmarkError("L3 warm-up actes were not all acknowledged: "
                                     + workers[0].output()[-3000:])
            items = self.items(f"l3w{worker_count}sat", n)
            actes += n
            pids = [w.pid for w in workers]
            cpu0 = [cpu_seconds(p) for p in pids]
            broker0 = cpu_seconds(self.broker.running_pid())
            sandbox0 = cpu_seconds(self.sandbox_pid())
            print(f"  L3 saturation: {n} actes at once ...", flush=True)
            first = time.monotonic()
            await publish(producer, items)
            flows = {i.flow_id for i in items}
            if not await reader.wait(flows, "acknowledged", self.args.timeout):
                done = sum("acknowledged" in reader.seen.get(f, {}) for f in flows)
                raise BenchmarkError(f"L3: {done} of {n} actes acknowledged within "
                                     f"{self.args.timeout:.0f} s")
            last = max(reader.seen[f]["acknowledged"] for f in flows)
            cpu1 = [cpu_seconds(p) for p in pids]
            broker1 = cpu_seconds(self.broker.running_pid())
            sandbox1 = cpu_seconds(self.sandbox_pid())
            saturation = n / (last - first)
            worker_cpu = sum((b or 0) - (a or 0) for a, b in zip(cpu0, cpu1, strict=True))
            label = "L3 saturation" + (f", {worker_count} workers" if worker_count > 1 else "")
            sat = Rung(label, f"{n} actes at once, {worker_count} worker(s)",
                       records=n, per_second=saturation, cpu_ms=worker_cpu / n * 1000,
                       broker_cpu_ms=((broker1 - broker0) / n * 1000
                                      if broker0 is not None and broker1 is not None else None),
                       sandbox_cpu_ms=((sandbox1 - sandbox0) / n * 1000
                                       if sandbox0 is not None and sandbox1 is not None
                                       else None))
            sat.peak_rss_mib = max((peak_rss_mib(p) or 0) for p in pids)
            self.ladder.rungs.append(sat)
            if worker_count > 1:
                sat.extra["assignment"] = await self.assignment()
            if not latency:
                return

            rate = saturation / 2
            count = max(10, int(rate * self.args.l3_seconds))
            items = self.items(f"l3w{worker_count}lat", count)
            actes += count
            print(f"  L3 latency: {count} actes at {rate:.0f}/s ...", flush=True)
            sent = await publish(producer, items, rate)
            wall = time.time() - time.monotonic()
            flows = {i.flow_id for i in items}
            if not await reader.wait(flows, "acknowledged", self.args.timeout):
                raise BenchmarkError("L3: latency actes not all acknowledged in time")
            posted = [(reader.seen[f]["posted"] - sent[f]) * 1000 for f in flows
                      if "posted" in reader.seen[f]]
            acked = [(reader.seen[f]["acknowledged"] - sent[f]) * 1000 for f in flows]
            lat = Rung("L3 latency", f"{count} actes at {rate:.0f}/s", records=count,
                       per_second=rate,
                       peak_rss_mib=max((peak_rss_mib(p) or 0) for p in pids),
                       extra={"posted_p50_ms": percentile(posted, 50),
                              "posted_p99_ms": percentile(posted, 99),
                              "acknowledged_p50_ms": percentile(acked, 50),
                              "acknowledged_p99_ms": percentile(acked, 99),
                              "hops": hop_latencies(
                                  reader, {f: (sent[f] + wall) * 1000 for f in flows})})
            sat.peak_rss_mib = lat.peak_rss_mib
            self.ladder.rungs.append(lat)
            self.ladder.broker_peak_rss_mib = peak_rss_mib(self.broker.running_pid())
            sandbox = self.hub.processes.get("sandbox")
            self.ladder.sandbox_peak_rss_mib = peak_rss_mib(sandbox.pid if sandbox else None)
        finally:
            await producer.stop()
            await reader.stop()
            for process in workers:
                stop_quietly(process)
        if counted and actes:
            await asyncio.sleep(2.0)  # the flow-state agent's last folds
            self.ladder.per_acte = await self.acte_cost(
                counted, offsets0, actes, workers[0].log_path)

    async def data_topics(self) -> list[str]:
        """Every topic of the run but Kafka's internal ones."""
        async with admin_client(self.bootstrap) as admin:
            names = await admin.list_topics()
        return sorted(t for t in names if not t.startswith("__"))

    async def acte_cost(self, topics: list[str], offsets0: dict[TopicPartition, int],
                        actes: int, worker_log: Path) -> dict[str, Any]:
        """Records, transaction markers and transactions per acte over the one-worker L3
        (warm-up, saturation and latency actes; every topic but Kafka's internal ones)."""
        offsets1 = await end_offsets_of(self.bootstrap, topics)
        records = await count_between(self.bootstrap, offsets0, offsets1)
        moved: dict[str, int] = {}
        for tp, end in offsets1.items():
            moved[tp.topic] = moved.get(tp.topic, 0) + end - offsets0.get(tp, 0)
        total = sum(records.values())
        markers = sum(moved.values()) - total
        transactions = worker_transactions(worker_log)
        def short(topic: str) -> str:
            return ("relais.member.*." + topic.rsplit(".", 1)[-1]
                    if topic.startswith("relais.member.") else topic)
        by_topic: dict[str, int] = {}
        for topic, count in records.items():
            by_topic[short(topic)] = by_topic.get(short(topic), 0) + count
        return {
            "actes": actes,
            "records": total / actes,
            "markers": markers / actes,
            "transactions": sum(transactions.values()) / actes,
            "records_by_topic": {t: round(c / actes, 2) for t, c in sorted(by_topic.items())
                                 if c},
            "transactions_by_stage": {s: round(c / actes, 2)
                                      for s, c in sorted(transactions.items()) if c},
        }


def large_document_rung(args: argparse.Namespace, work: Path) -> Rung:
    """The large-document rung: ``benchmarks.large_document`` run as a child (its own
    broker and hub processes), up to *posted*; its growth figures as the rung's notes."""
    out = work / "large_document.json"
    command = [sys.executable, "-m", "benchmarks.large_document",
               "--size-mb", str(args.large_document_mb), "--posted-only", "--json", str(out),
               "--broker-timeout", str(args.broker_timeout)]
    print(f"Large document: {' '.join(command[1:])} ...", flush=True)
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=args.timeout * 4, check=False)
    if not out.exists():
        raise BenchmarkError("the large-document rung gave no figures:\n"
                             + (done.stdout + done.stderr)[-3000:])
    data = json.loads(out.read_text(encoding="utf-8"))
    memory = data.get("memory") or {}

    def growth(name: str) -> float | None:
        value = ((memory.get(name) or {}).get("growth_mib") or {}).get("posted")
        return float(value) if value is not None else None

    worker = memory.get("worker") or {}
    peak = (worker.get("baseline_mib") or 0) + (growth("worker") or 0)
    posted = float(data.get("posted_seconds") or 0)
    upload = float(data.get("upload_seconds") or 0)
    notes = (f"{args.large_document_mb} MB acte: upload {upload:.1f} s, posted {posted:.1f} "
             f"s later; RSS growth API {fmt(growth('api'), 1)}, "
             f"worker {fmt(growth('worker'), 1)} MiB"
             + (f" (over the bar: {', '.join(data['over_bar'])})" if data.get("over_bar")
                else ""))
    return Rung("L4 large document", notes, records=1,
                per_second=1 / posted if posted else 0.0, peak_rss_mib=peak or None,
                extra={"large_document": data})


def report(args: argparse.Namespace, ladder: Ladder) -> str:
    objet, annexes = SIZES[args.size]
    limit = next((r for r in ladder.rungs if r.name == L1), None)
    durable = next((r for r in ladder.rungs if r.name == L1B), None)
    rows = []
    for rung in ladder.rungs:
        # records/s compare with records/s: L3's actes/s and L4's one document do not
        records = rung.name.startswith(("L1", "L2"))
        vs_l1 = (f"{rung.per_second / limit.per_second:.2f}"
                 if records and limit and limit.per_second else "-")
        vs_l1b = (f"{rung.per_second / durable.per_second:.2f}"
                  if records and durable and durable.per_second else "-")
        latency = ""
        if "posted_p50_ms" in rung.extra:
            e = rung.extra
            latency = (f"posted p50 {e['posted_p50_ms']:.0f} / p99 {e['posted_p99_ms']:.0f} ms; "
                       f"acknowledged p50 {e['acknowledged_p50_ms']:.0f} / "
                       f"p99 {e['acknowledged_p99_ms']:.0f} ms")
        rows.append([rung.name, fmt(rung.records), fmt(rung.per_second, 0), vs_l1, vs_l1b,
                     fmt(rung.cpu_ms, 3), fmt(rung.broker_cpu_ms, 3),
                     fmt(rung.sandbox_cpu_ms, 3),
                     fmt(rung.peak_rss_mib, 0), latency or rung.what])
    lines = [
        "",
        f"RELAIS BENCHMARK LADDER: {args.records} records, {args.members} members, size "
        f"{args.size} ({objet}-char objet, {annexes} annexes), {args.partitions} partitions, "
        f"{args.workers} worker(s) in L3",
        "",
        table(["rung", "records", "per s", "x L1", "x L1b", "CPU ms/rec", "broker ms/rec",
               "TdT ms/rec",
               "peak RSS MiB", "notes"], rows),
        "",
        f"x L1: against {L1!r}; x L1b: against {L1B!r}, the bare loop writing per input "
        f"the records the ingress wrote, with their headers (the 0.8 target's baseline)"
        + (f"; {L1B_BARE!r}: the same records without their headers (what the headers cost)"
           if any(r.name == L1B_BARE for r in ladder.rungs) else ""),
        *shape_lines(ladder),
        f"broker peak RSS {fmt(ladder.broker_peak_rss_mib, 0)} MiB; sandbox TdT peak RSS "
        f"{fmt(ladder.sandbox_peak_rss_mib, 0)} MiB",
        *(f"{rung.name}: {stage} partitions per worker: "
          + " | ".join(", ".join(parts) if len(parts) <= 6 else f"{len(parts)} partitions"
                       for parts in assigned)
          for rung in ladder.rungs
          for stage, assigned in rung.extra.get("assignment", {}).items()),
        *hop_lines(ladder),
        *acte_lines(ladder),
        "",
        *target_lines(targets(ladder)),
        "",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.platform()}",
    ]
    return "\n".join(lines)


def shape_lines(ladder: Ladder) -> list[str]:
    """What the ingress wrote per input (measured from its committed records) and what
    each L1b rung sent (counted by the rung), side by side."""
    shape = ladder.shape
    if shape is None:
        return []
    lines = [
        f"inputs (the same records for L1, L1b and L2 ingress): {shape.inputs}, value "
        f"{shape.input_value_bytes:.0f} B, headers {shape.input_header_bytes:.0f} B each",
        f"L2 ingress wrote per input: {shape.outputs_per_input:.2f} records ("
        + ", ".join(f"{s.topic} {s.per_input:.2f}" for s in shape.slots)
        + f"); per record: value {shape.value_bytes_per_output:.0f} B, "
        f"{shape.headers_per_output:.1f} headers of {shape.header_bytes_per_output:.0f} B "
        "(names and values)",
    ]
    for rung in ladder.rungs:
        sent = rung.extra.get("sent")
        if not sent or not sent.get("inputs") or not sent.get("outputs"):
            continue
        inputs, outputs = sent["inputs"], sent["outputs"]
        lines.append(
            f"{rung.name} wrote per input: {outputs / inputs:.2f} records (to the member's "
            "topics and to mirrors of the hub's, as many partitions); per record: value "
            f"{sent['value_bytes'] / outputs:.0f} B, {sent['headers'] / outputs:.1f} "
            f"headers of {sent['header_bytes'] / outputs:.0f} B; it read {inputs} inputs "
            f"of {sent['input_value_bytes'] / inputs:.0f} B value, "
            f"{sent['input_header_bytes'] / inputs:.0f} B headers")
    return lines


def targets(ladder: Ladder) -> list[Target]:
    """Issue 12's targets that this run's rungs measure."""
    rate = {r.name: r.per_second for r in ladder.rungs}
    ingress = (INGRESS, rate.get(INGRESS, 0.0))
    found = [
        ratio(f"{INGRESS} / L1", ingress, (L1, rate.get(L1, 0.0)), INGRESS_VS_L1),
        ratio(f"{INGRESS} / L1b", ingress, (L1B, rate.get(L1B, 0.0)), INGRESS_VS_L1B),
    ]
    for rung in ladder.rungs:
        if rung.name == "L3 saturation":
            found.append(Target("L3 actes/s at saturation, 1 worker", rung.per_second,
                                L3_ACTES_PER_SECOND, at_least=True))
        if "posted_p99_ms" in rung.extra:
            found.append(Target("p99 publish -> posted, ms", rung.extra["posted_p99_ms"],
                                POSTED_P99_MS, at_least=False,
                                how=f"at {rung.per_second:.0f}/s, half the saturation"))
    workers = [r.peak_rss_mib for r in ladder.rungs
               if r.name.startswith("L3") and r.peak_rss_mib is not None]
    if workers:
        found.append(Target("worker peak RSS, MiB", max(workers), WORKER_RSS_MIB,
                            at_least=False, how="the largest of the L3 rungs"))
    return [t for t in found if t is not None]


def hop_lines(ladder: Ladder) -> list[str]:
    """The per-hop split of publish → *posted* (the latency rung's)."""
    lines = []
    for rung in ladder.rungs:
        hops = rung.extra.get("hops")
        if hops:
            lines.append(f"{rung.name}, publish -> posted per hop (p50 / p99 ms): " + "; ".join(
                f"{name} {fmt(v['p50_ms'], 0)} / {fmt(v['p99_ms'], 0)}"
                for name, v in hops.items()))
    return lines


def acte_lines(ladder: Ladder) -> list[str]:
    """Records and transactions per acte (the one-worker L3's)."""
    cost = ladder.per_acte
    if not cost:
        return []
    return [
        f"L3 per acte ({cost['actes']} actes, one worker): {cost['records']:.2f} records, "
        f"{cost['markers']:.2f} transaction markers, {cost['transactions']:.2f} "
        "transactions",
        "  records: " + ", ".join(f"{t} {c}" for t, c in cost["records_by_topic"].items()),
        "  transactions: " + ", ".join(f"{t} {c}"
                                       for t, c in cost["transactions_by_stage"].items()),
    ]


def as_json(args: argparse.Namespace, ladder: Ladder) -> dict[str, Any]:
    return {
        "knobs": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "fanout": ladder.fanout,
        "ingress_output_shape": shape_summary(ladder.shape) if ladder.shape else None,
        "targets": [t.as_dict() for t in targets(ladder)],
        "broker_peak_rss_mib": ladder.broker_peak_rss_mib,
        "sandbox_peak_rss_mib": ladder.sandbox_peak_rss_mib,
        "per_acte": ladder.per_acte,
        "rungs": [dataclasses.asdict(r) for r in ladder.rungs],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ladder",
        description="L1 bare loop, L1b durable bare loop, L2 hub stages, L3 end to end, "
        "in one run on a throwaway broker and the sandbox TdT.")
    parser.add_argument("--records", type=int, default=2000,
                        help="submissions drained by each L1/L2 rung (default 2000)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small",
                        help="submission size: small, medium (3 annexes), large (10 annexes)")
    parser.add_argument("--members", type=int, default=20, help="members (default 20)")
    parser.add_argument("--partitions", type=int, default=3,
                        help="partitions of every multi-partition hub topic (default 3)")
    parser.add_argument("--workers", type=int, default=1,
                        help="above 1: L3 saturation again with this many workers sharing "
                        "the partitions, and each stage's assignment (default 1)")
    parser.add_argument("--l3-records", type=int, default=500,
                        help="actes published at once for L3 saturation (default 500)")
    parser.add_argument("--l3-seconds", type=float, default=15.0,
                        help="seconds of publishing at half the saturation rate (default 15)")
    parser.add_argument("--skip-l3", action="store_true", help="stop after the L2 rungs")
    parser.add_argument("--large-document-mb", type=int, default=0,
                        help="also run benchmarks.large_document for an acte of this many MB "
                        "(its own broker, API, worker and sandbox; up to posted) and show it "
                        "as the last rung (default 0: not run)")
    parser.add_argument("--rungs", default="l1,l1b,l1b-noheaders,validation,delivery,status",
                        help="which rungs besides the ingress, which always runs (comma-"
                        "separated, from l1, l1b, l1b-noheaders, validation, delivery, "
                        "status; each acts stage drains what the previous one forwarded, "
                        "so a stage needs the ones before it)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="RELAIS_LOG_LEVEL of the hub processes (default INFO, as deployed)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds for one rung to finish (default 300)")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--broker-timeout", type=float, default=180.0)
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of each L1/L2 rung's measured window in this "
                        "directory (slows the rungs; not for figures)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    if not 10 <= args.records <= 1_000_000:
        parser.error("--records must be between 10 and 1000000")
    if not 1 <= args.members <= 2000:
        parser.error("--members must be between 1 and 2000")
    if not 1 <= args.partitions <= 64 or not 1 <= args.workers <= 8:
        parser.error("--partitions must be 1-64 and --workers 1-8")
    if not 0 <= args.large_document_mb <= 1024:
        parser.error("--large-document-mb must be between 0 and 1024")
    unknown = set(args.rungs.split(",")) - RUNG_NAMES
    if unknown:
        parser.error(f"--rungs: unknown {', '.join(sorted(unknown))} (known: "
                     f"{', '.join(sorted(RUNG_NAMES))})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(stack: contextlib.ExitStack) -> None:
        work = temp_dir(stack, "relais-bench-ladder-", args.keep)
        broker, seconds = start_broker(stack, work / "broker", args.broker_timeout)
        print(f"Broker ready in {seconds:.1f} s (pid {broker.running_pid()})", flush=True)
        load_before = load_line()
        driver = Driver(stack, args, broker, work)

        async def run() -> None:
            await driver.setup()
            await driver.rungs_l1_l2()
            if not args.skip_l3:
                await driver.rung_l3(1, latency=True)
                if args.workers > 1:
                    await driver.rung_l3(args.workers, latency=False)

        asyncio.run(run())
        if args.large_document_mb:
            driver.ladder.rungs.append(large_document_rung(args, work))
        print(report(args, driver.ladder))
        print(f"({load_before} at the start, {load_line()} at the end)")
        if args.json is not None:
            args.json.write_text(json.dumps(as_json(args, driver.ladder), indent=2,
                                            default=str), encoding="utf-8")
            print(f"Figures written to {args.json}")

    return run_benchmark(body)


if __name__ == "__main__":
    sys.exit(main())
