"""The child processes of the benchmark ladder (``benchmarks.ladder``).

Each role drains a topic the driver filled beforehand and prints one
``LADDER_RESULT {json}`` line, then exits:

``l1``
    a bare aiokafka loop over the members' submissions topics: decode, one Avro
    notification per record (sends not awaited one by one, acks=all), offsets
    committed after each batch.
``l1b``
    the same loop doing the hub's durable I/O: per input, the records the hub's ingress
    wrote per input in this run (``--shape``, measured by the ladder: as many records,
    values of the same sizes, headers of the same names and sizes, or none with
    ``--no-headers 1``; to the member's topics and to mirrors of the hub's topics with
    as many partitions), one Kafka transaction per batch with the offsets,
    read_committed. What it sent is counted in its result (``sent``).
``stage:<name>``
    one hub stage alone, built by the composition root (``hub.app.build_dependencies``)
    from the flow declarations: the journal publisher, the views, and that stage's
    runner only (``stage:acts-status`` also runs the delay forwarders that bring the
    status polls back).

Figures are measured from the end of the first batch (connection, group join and
warm-up excluded) to the last record of ``--count``: records/s, CPU seconds of this
process and of the broker (``--broker-pid``), and the process's peak RSS.
``--profile PATH`` writes a cProfile of that window (the ladder's ``--profile DIR``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from benchmarks import cpu_seconds
from benchmarks.output_shape import DurableOutputs, OutputShape, header_bytes
from relais.errors import DecodeError
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, notification_record
from relais.kafka import clients as kafka_clients
from relais.stages.instance import TRANSACTION_TIMEOUT_MS, transactional_id
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics
from topics.member import SUBMISSIONS_PATTERN, siren_of_submissions_topic

RESULT_MARK = "LADDER_RESULT "
READY_MARK = "ladder.role_ready"


@dataclass
class RoleResult:
    """What one role measured (after its first batch)."""

    role: str
    records: int = 0  # records counted in the measured window
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    broker_cpu_seconds: float | None = None
    sandbox_cpu_seconds: float | None = None
    peak_rss_mib: float = 0.0
    failed: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # l1b: inputs, outputs and bytes

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class Window:
    """The measured window: opened at the first batch's end, closed at ``count``."""

    def __init__(self, role: str, count: int, broker_pid: int | None,
                 profile: str | None = None, sandbox_pid: int | None = None) -> None:
        self.result = RoleResult(role)
        self._profile_path = profile
        self._profiler: cProfile.Profile | None = None
        self._count = count
        self._broker_pid = broker_pid
        self._sandbox_pid = sandbox_pid
        self._sandbox0: float | None = None
        self._opened_at: float | None = None
        self._cpu0 = 0.0
        self._broker0: float | None = None
        self._handled0 = 0

    def observe(self, handled: int) -> bool:
        """Record progress (``handled`` so far); True once ``count`` is reached."""
        if self._opened_at is None:
            if handled <= 0:
                return False
            self._opened_at = time.monotonic()
            self._cpu0 = time.process_time()
            self._broker0 = cpu_seconds(self._broker_pid)
            self._sandbox0 = cpu_seconds(self._sandbox_pid)
            self._handled0 = handled
            if self._profile_path:
                self._profiler = cProfile.Profile()
                self._profiler.enable()
        if handled < self._count:
            return False
        if self._profiler is not None and self._profile_path:
            self._profiler.disable()
            self._profiler.dump_stats(self._profile_path)
            self._profiler = None
        self.result.records = handled - self._handled0
        self.result.seconds = time.monotonic() - self._opened_at
        self.result.cpu_seconds = time.process_time() - self._cpu0
        broker1 = cpu_seconds(self._broker_pid)
        if self._broker0 is not None and broker1 is not None:
            self.result.broker_cpu_seconds = broker1 - self._broker0
        sandbox1 = cpu_seconds(self._sandbox_pid)
        if self._sandbox0 is not None and sandbox1 is not None:
            self.result.sandbox_cpu_seconds = sandbox1 - self._sandbox0
        return True

    def emit(self) -> None:
        self.result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(RESULT_MARK + json.dumps(asdict(self.result)), flush=True)


# ------------------------------------------------------------------ bare loops


async def bare_loop(args: argparse.Namespace, window: Window,
                    shape: OutputShape | None = None) -> None:
    """L1 (no ``shape``) or L1b (the outputs of ``shape``, in one transaction per batch):
    forward every submission as notifications."""
    durable = shape is not None
    codec = AvroCodec()
    consumer = kafka_clients.consumer(
        bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", metadata_max_age_ms=3000, session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        isolation_level="read_committed" if durable else "read_uncommitted",
    )
    consumer.subscribe(pattern=SUBMISSIONS_PATTERN)
    options: dict[str, Any] = (
        {"transactional_id": transactional_id(args.group),
         "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS}
        if durable else {"acks": "all"}
    )
    producer = kafka_clients.producer(bootstrap_servers=args.bootstrap, linger_ms=5,
                                      max_request_size=4 * 1024 * 1024, **options)
    shaped = DurableOutputs(codec, shape) if shape is not None else None
    sent = window.result.sent
    await producer.start()
    await consumer.start()
    print(READY_MARK, flush=True)
    handled = 0
    try:
        while not window.observe(handled):
            batches = await consumer.getmany(timeout_ms=1000, max_records=args.max_records)
            if not batches:
                continue
            outputs, offsets = batch_outputs(codec, batches, shaped)
            if durable:
                async with producer.transaction():
                    for topic, key, value, headers in outputs:
                        await producer.send(topic, value, key=key, headers=headers)
                    await producer.send_offsets_to_transaction(offsets, args.group)
                count_sent(sent, batches, outputs)
            else:
                futures = [await producer.send(t, v, key=k) for t, k, v, _ in outputs]
                await asyncio.gather(*futures)
                await consumer.commit(offsets)
            handled += sum(len(r) for r in batches.values())
    finally:
        await consumer.stop()
        await producer.stop()


Output = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def batch_outputs(codec: AvroCodec, batches: dict[TopicPartition, list[Any]],
                  shaped: DurableOutputs | None,
                  ) -> tuple[list[Output], dict[TopicPartition, int]]:
    """What a bare loop writes for one batch of submissions (L1: one notification per
    input, no headers; L1b: ``shaped``'s records), and the offsets to commit."""
    outputs: list[Output] = []
    offsets: dict[TopicPartition, int] = {}
    for tp, records in batches.items():
        siren = siren_of_submissions_topic(tp.topic) or ""
        target = member_topics.notifications(siren).name
        for record in records:
            kind = "ACCEPTED"
            try:
                submission = codec.decode(record.value or b"").record
                submission_id = str(submission.get("submission_id") or "")
            except DecodeError:
                submission_id, kind = f"offset-{record.offset}", "REJECTED"
            flow = FlowContext(flow_id_for(siren, submission_id), siren, "acte",
                               submission_id)
            if shaped is None:
                value = codec.encode("Notification", notification_record(
                    flow, kind=kind, state="received", message="ok"))
                outputs.append((target, flow.flow_id.encode("utf-8"), value, []))
            else:
                outputs.extend(shaped.for_input(flow))
        offsets[tp] = records[-1].offset + 1
    return outputs, offsets


def count_sent(sent: dict[str, int], batches: dict[Any, list[Any]],
               outputs: list[Output]) -> None:
    """Add one committed batch to ``sent``: its inputs and their sizes, its outputs, their
    value bytes, headers and header bytes."""
    for records in batches.values():
        for record in records:
            sent["inputs"] = sent.get("inputs", 0) + 1
            sent["input_value_bytes"] = sent.get("input_value_bytes", 0) + len(record.value or b"")
            sent["input_header_bytes"] = (sent.get("input_header_bytes", 0)
                                          + header_bytes(record.headers))
    for _topic, _key, value, headers in outputs:
        sent["outputs"] = sent.get("outputs", 0) + 1
        sent["value_bytes"] = sent.get("value_bytes", 0) + len(value)
        sent["headers"] = sent.get("headers", 0) + len(headers)
        sent["header_bytes"] = sent.get("header_bytes", 0) + header_bytes(headers)


# ------------------------------------------------------------------ hub stages


async def hub_stage(args: argparse.Namespace, window: Window, stage_name: str) -> None:
    """One hub stage alone, as the composition root builds it."""
    from hub.app import build_dependencies
    from relais.logs import configure_logging
    from relais.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    deps = build_dependencies(settings)
    runner = deps.stage_runners[stage_name]
    extra: list[Any] = []
    if stage_name == "acts-status":  # the polls wait on the delay tiers
        from relais.stages.delay_forwarder import DelayForwarder

        extra = [r for r in deps.runners if isinstance(r, DelayForwarder)]
    await deps.journal.start()
    for view in deps.views:
        await view.start()
    for other in extra:
        await other.start()
    await runner.start()
    print(READY_MARK, flush=True)
    try:
        while not window.observe(runner.stats.handled):  # noqa: ASYNC110 - polls counters
            await asyncio.sleep(0.005)
        window.result.failed = runner.stats.failed
    finally:
        await runner.stop()
        for other in extra:
            await other.stop()
        for view in reversed(deps.views):
            await view.stop()
        for running in deps.flows:
            for close in running.runtime.closers:
                await close()
        await deps.journal.stop()


# ------------------------------------------------------------------ entry


def run_role(args: argparse.Namespace) -> int:
    window = Window(args.role, args.count, args.broker_pid, args.profile, args.sandbox_pid)
    body: Callable[[], Awaitable[None]]
    if args.role == "l1":
        body = lambda: bare_loop(args, window)  # noqa: E731
    elif args.role == "l1b":
        shape = OutputShape.from_json(Path(args.shape).read_text(encoding="utf-8"))
        if args.no_headers:
            shape = shape.without_headers()
        body = lambda: bare_loop(args, window, shape)  # noqa: E731
    elif args.role.startswith("stage:"):
        body = lambda: hub_stage(args, window, args.role.removeprefix("stage:"))  # noqa: E731
    else:
        print(f"unknown role {args.role}", file=sys.stderr)
        return 2

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        await body()

    asyncio.run(main())
    window.emit()
    return 0


def role_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ladder_roles")
    parser.add_argument("--role", required=True)
    parser.add_argument("--count", type=int, required=True,
                        help="records to drain (the input's size)")
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--group", default="")
    parser.add_argument("--shape", default=None,
                        help="l1b: the JSON of the ingress's output shape (the ladder's)")
    parser.add_argument("--no-headers", type=int, default=0,
                        help="l1b: 1 to send the shape's records without their headers")
    parser.add_argument("--max-records", type=int, default=500)
    parser.add_argument("--broker-pid", type=int, default=None)
    parser.add_argument("--sandbox-pid", type=int, default=None)
    parser.add_argument("--profile", default=None,
                        help="write a cProfile of the measured window here")
    return parser


if __name__ == "__main__":
    sys.exit(run_role(role_parser().parse_args()))
