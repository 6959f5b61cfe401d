"""How Relais scales with the number of members: registration, topic check, worker start.

Run from the repository root::

    .venv/bin/python -m benchmarks.members_scale               # 1100 members
    .venv/bin/python -m benchmarks.members_scale --members 200

On a throwaway broker (free loopback ports, data in a temp dir) it measures

(a) registering N members with ``ops.members.register_members`` (two topics
    each plus a registry record), in calls of ``--batch`` members, so a cost
    growing with the cluster's size shows in the per-batch figures;
(b) the ``relais topics check`` work over every topic: reading the registry
    (the member directory) then ``ops.topics.check_topics``, right after the
    registration and again once the broker lists every created topic (a KRaft
    broker acknowledges CreateTopics before its metadata shows the topics; the
    delay is reported);
(c) the hub worker's start with N members: spawn → ``members.directory_ready``
    → ``relais worker ready`` → the ingress group holds every submissions partition
    (seen with DescribeGroups) → a submission published to the LAST member before
    the spawn is answered on its notifications topic (end-to-end readiness);
(d) the same worker start with a single member, measured first in the same
    run (before the N members exist), as the baseline.

Each worker start is repeated ``--repeat`` times (fresh app id each time) and
the medians are compared: on a shared machine one start varies by seconds.

The broker's RSS is shown before and after the registration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from benchmarks import (
    BENCH_DEPARTMENT,
    REPO_ROOT,
    BenchmarkError,
    bench_sirens,
    fmt,
    hub_env,
    ingress_ready,
    load_line,
    registry_read,
    rss_mib,
    run_benchmark,
    start_broker,
    stop_quietly,
    submissions_partitions_assigned,
    table,
    temp_dir,
    upload_pdf,
    wait_topics_ready,
)
from hub.flows import FLOWS
from ops.kafka.broker import LocalBroker
from ops.members import Registration, new_member, register_members
from ops.notifications import NotificationWatcher
from ops.processes import ManagedProcess
from ops.submissions import ActeDraft, publish_acte
from ops.topics import apply_topics, check_topics
from relais.errors import InfrastructureError
from relais.flows.ids import flow_id_for
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import faust_internal_topics, hub_topics
from topics.member import member_topics, siren_of_submissions_topic
from topics.spec import TopicSpec

BASELINE_APP_ID = "relais-bench-one"
SCALE_APP_ID = "relais-bench-many"


@dataclass
class WorkerStart:
    """Seconds from the worker's spawn to each readiness step, and what it used."""

    label: str
    members_in_registry: int
    submissions_partitions: int
    directory_ready: float | None = None
    ingress_started: float | None = None
    all_assigned: float | None = None
    probe_answered: float | None = None
    rss_mib: float | None = None
    stop_seconds: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Registered:
    batches: list[tuple[int, float]] = field(default_factory=list)  # (members, seconds)

    @property
    def members(self) -> int:
        return sum(n for n, _ in self.batches)

    @property
    def seconds(self) -> float:
        return sum(s for _, s in self.batches)


@dataclass
class Checked:
    topics: int = 0
    drift: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    directory_seconds: float = 0.0
    check_seconds: float = 0.0

    def kinds_text(self) -> str:
        return ", ".join(f"{kind} {count}" for kind, count in self.kinds.most_common()) or "-"


@dataclass
class Figures:
    members: int
    batch: int
    broker_start: float = 0.0
    rss_before: float | None = None
    rss_after: float | None = None
    registered: Registered = field(default_factory=Registered)
    checked_at_once: Checked = field(default_factory=Checked)
    visible_after: float | None = None
    checked: Checked = field(default_factory=Checked)
    starts: list[WorkerStart] = field(default_factory=list)


def registrations_for(sirens: list[str]) -> list[Registration]:
    return [
        new_member(siren, f"Commune de test {siren}", BENCH_DEPARTMENT, token=f"bench-{siren}")
        for siren in sirens
    ]


async def measure_worker_start(
    stack: contextlib.ExitStack,
    admin: AIOKafkaAdminClient,
    publisher: Publisher,
    *,
    label: str,
    bootstrap: str,
    data_dir: Path,
    app_id: str,
    probe_siren: str,
    members_in_registry: int,
    log_level: str,
    start_timeout: float,
    ready_timeout: float,
) -> WorkerStart:
    """Spawn a hub worker and time its readiness steps (sampled every ~0.2 s)."""
    settings = Settings.from_env(kafka_bootstrap=bootstrap, data_dir=data_dir, app_id=app_id)
    blob = await upload_pdf(settings.blob_dir, label, owners=[probe_siren])
    await wait_topics_ready(admin, [t.name for t in member_topics(probe_siren)], 60)
    topics = await admin.list_topics()
    partitions = sum(1 for t in topics if siren_of_submissions_topic(t) is not None)
    if partitions < 1:
        raise BenchmarkError("the cluster lists no member submissions topic")
    figures = WorkerStart(label, members_in_registry, partitions)

    codec = publisher.codec
    watcher = NotificationWatcher(bootstrap, probe_siren, codec)
    await watcher.start()
    submission_id = f"probe-{app_id}"
    probe_flow = flow_id_for(probe_siren, submission_id)
    try:
        # Published BEFORE the spawn: the answer time is then the worker's readiness,
        # whatever the moment the ingress gets this partition.
        await publish_acte(
            publisher,
            ActeDraft(
                submission_id=submission_id,
                member_siren=probe_siren,
                nature_code=1,
                matieres=(7, 1),
                numero_interne="BENCH_1",
                decision_date=date(2026, 1, 15),
                objet="Benchmark readiness probe",
                document=blob,
            ),
        )
        worker = ManagedProcess(
            f"hub worker ({label})", ["worker"], hub_env(settings, log_level),
            data_dir / "worker.log",
        )
        stack.callback(stop_quietly, worker)
        started = time.monotonic()
        worker.start()
        next_describe = 0.0
        while None in (figures.probe_answered, figures.all_assigned, figures.ingress_started):
            now = time.monotonic() - started
            if not worker.running():
                raise BenchmarkError(
                    f"{worker.name} exited during start:\n{worker.output()[-3000:]}"
                )
            if figures.ingress_started is None:
                output = worker.output()
                if figures.directory_ready is None and registry_read(output):
                    figures.directory_ready = now
                if ingress_ready(output):
                    figures.ingress_started = now
                elif now > start_timeout:
                    raise BenchmarkError(
                        f"{worker.name} did not print 'relais worker ready' within "
                        f"{start_timeout:.0f} s "
                        f"(slow machine? raise --start-timeout). Last output:\n"
                        f"{worker.output()[-3000:]}"
                    )
            if now > ready_timeout:
                raise BenchmarkError(
                    f"{worker.name} not fully ready within {ready_timeout:.0f} s (slow machine? "
                    f"raise --ready-timeout): ready at {fmt(figures.ingress_started)} s, "
                    f"all {partitions} partitions assigned at {fmt(figures.all_assigned)} s, "
                    f"probe answered at {fmt(figures.probe_answered)} s. Last output:\n"
                    f"{worker.output()[-2000:]}"
                )
            if figures.all_assigned is None and now >= next_describe:
                next_describe = now + 0.25
                if await submissions_partitions_assigned(admin, app_id) >= partitions:
                    figures.all_assigned = time.monotonic() - started
            if figures.probe_answered is None:
                for notification in await watcher.poll(0.1):
                    if notification["flow_id"] == probe_flow:
                        figures.probe_answered = time.monotonic() - started
                        if notification["kind"] != "ACCEPTED":
                            figures.notes.append(
                                f"probe answered {notification['kind']}: {notification['message']}"
                            )
            else:
                await asyncio.sleep(0.1)
        figures.rss_mib = rss_mib(worker.pid)
        figures.stop_seconds = stop_quietly(worker)
    finally:
        await watcher.stop()
    return figures


def warm_imports() -> None:
    """Import the worker's modules once in a throwaway process, so the first measured start
    does not pay for compiling bytecode or reading cold files."""
    try:
        subprocess.run(
            [sys.executable, "-c", "import hub.worker"], cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True,
            timeout=300, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError("importing the hub worker's modules took over 300 s") from exc


async def register_in_batches(
    admin: AIOKafkaAdminClient,
    publisher: Publisher,
    registrations: list[Registration],
    batch: int,
    limit: float,
) -> Registered:
    registered = Registered()
    deadline = time.monotonic() + limit
    for start in range(0, len(registrations), batch):
        chunk = registrations[start : start + batch]
        began = time.monotonic()
        remaining = deadline - began
        if remaining <= 0:
            raise BenchmarkError(
                f"registration stopped after {registered.members} of {len(registrations)} "
                f"members: over --register-timeout ({limit:.0f} s); slow machine?"
            )
        try:
            async with asyncio.timeout(remaining):
                await register_members(admin, publisher, chunk)
        except TimeoutError as exc:
            raise BenchmarkError(
                f"registration did not finish within --register-timeout ({limit:.0f} s): "
                f"{registered.members} of {len(registrations)} members done"
            ) from exc
        registered.batches.append((len(chunk), time.monotonic() - began))
        done = registered.members
        print(
            f"  registered {done}/{len(registrations)} members "
            f"({registered.seconds:.1f} s so far)",
            flush=True,
        )
    return registered


async def topics_check(bootstrap: str, admin: AIOKafkaAdminClient, app_id: str) -> Checked:
    """What `relais topics check` does: read the registry, then check every declared topic."""
    checked = Checked()
    began = time.monotonic()
    directory = MemberDirectory(bootstrap, AvroCodec())
    await directory.start()
    try:
        specs: list[TopicSpec] = list(hub_topics(app_id, FLOWS))
        for member in directory.all():
            specs.extend(member_topics(member.siren))
    finally:
        await directory.stop()
    checked.directory_seconds = time.monotonic() - began
    began = time.monotonic()
    drift = await check_topics(admin, specs)
    checked.check_seconds = time.monotonic() - began
    checked.topics = len(specs)
    checked.drift = len(drift)
    checked.kinds = Counter(item.what for item in drift)
    return checked


async def wait_listed(admin: AIOKafkaAdminClient, names: list[str], limit: float) -> float:
    """Seconds until the broker's metadata (ListTopics) shows every topic in ``names``."""
    began = time.monotonic()
    wanted = set(names)
    while True:
        missing = wanted - set(await admin.list_topics())
        if not missing:
            return time.monotonic() - began
        if time.monotonic() - began > limit:
            raise BenchmarkError(
                f"{len(missing)} of {len(wanted)} created topics still not in the broker's "
                f"metadata after {limit:.0f} s (e.g. {sorted(missing)[0]}); slow machine?"
            )
        await asyncio.sleep(0.25)


async def scenario(
    stack: contextlib.ExitStack, args: argparse.Namespace, broker: LocalBroker, work: Path,
    figures: Figures,
) -> None:
    bootstrap = broker.bootstrap
    sirens = bench_sirens(args.members + 1)
    baseline_siren, scale_sirens = sirens[0], sirens[1:]
    codec = AvroCodec()
    publisher = Publisher(bootstrap, codec, client_id="bench-members-scale")
    await publisher.start()
    try:
        async with admin_client(bootstrap) as admin:
            app_ids = [
                f"{app}-{attempt}" for app in (BASELINE_APP_ID, SCALE_APP_ID)
                for attempt in range(1, args.repeat + 1)
            ]
            await apply_topics(admin, list(hub_topics(app_ids[0], FLOWS)))
            await apply_topics(admin, [t for a in app_ids[1:] for t in faust_internal_topics(a)])
            await register_members(admin, publisher, registrations_for([baseline_siren]))

            warm_imports()
            for attempt in range(1, args.repeat + 1):
                print(f"(d) baseline: hub worker start with 1 member ({attempt}/{args.repeat}) ...",
                      flush=True)
                figures.starts.append(
                    await measure_worker_start(
                        stack, admin, publisher, label="1 member", bootstrap=bootstrap,
                        data_dir=work / f"hub-one-{attempt}",
                        app_id=f"{BASELINE_APP_ID}-{attempt}",
                        probe_siren=baseline_siren, members_in_registry=1,
                        log_level=args.worker_log_level, start_timeout=args.start_timeout,
                        ready_timeout=args.ready_timeout,
                    )
                )
            figures.rss_before = rss_mib(broker.running_pid())

            print(f"(a) registering {args.members} members ...", flush=True)
            figures.registered = await register_in_batches(
                admin, publisher, registrations_for(scale_sirens), args.batch,
                args.register_timeout,
            )
            print("(b) checking every topic (`relais topics check` equivalent) at once ...",
                  flush=True)
            figures.checked_at_once = await topics_check(bootstrap, admin, app_ids[0])
            print("    waiting until the broker lists every created topic ...", flush=True)
            names = [t.name for s in scale_sirens for t in member_topics(s)]
            figures.visible_after = figures.checked_at_once.directory_seconds + (
                figures.checked_at_once.check_seconds
            ) + await wait_listed(admin, names, args.register_timeout)
            figures.rss_after = rss_mib(broker.running_pid())
            print("(b) checking every topic again ...", flush=True)
            figures.checked = await topics_check(bootstrap, admin, app_ids[0])

            for attempt in range(1, args.repeat + 1):
                print(f"(c) hub worker start with {args.members} members "
                      f"({attempt}/{args.repeat}) ...", flush=True)
                figures.starts.append(
                    await measure_worker_start(
                        stack, admin, publisher, label=f"{args.members} members",
                        bootstrap=bootstrap, data_dir=work / f"hub-many-{attempt}",
                        app_id=f"{SCALE_APP_ID}-{attempt}",
                        probe_siren=scale_sirens[-1], members_in_registry=args.members + 1,
                        log_level=args.worker_log_level, start_timeout=args.start_timeout,
                        ready_timeout=args.ready_timeout,
                    )
                )
    except InfrastructureError as exc:
        raise BenchmarkError(str(exc)) from exc
    finally:
        await publisher.stop()


def report(figures: Figures) -> str:
    n = figures.members
    reg = figures.registered
    lines = [
        "",
        f"RELAIS MEMBERS SCALE BENCHMARK: N = {n} members (broker start {figures.broker_start:.1f}"
        " s)",
        "",
    ]
    per_member_ms = reg.seconds / reg.members * 1000 if reg.members else None
    rows = [
        ["members registered", fmt(reg.members)],
        ["topics created (2 per member)", fmt(2 * reg.members)],
        [f"register_members calls ({figures.batch} members each)", fmt(len(reg.batches))],
        ["seconds until register_members returned", fmt(reg.seconds)],
        ["ms per member (overall)", fmt(per_member_ms, 1)],
    ]
    if reg.batches:
        first_n, first_s = reg.batches[0]
        last_n, last_s = reg.batches[-1]
        rows.append(["ms per member, first call", fmt(first_s / first_n * 1000, 1)])
        rows.append(["ms per member, last call", fmt(last_s / last_n * 1000, 1)])
    rows.append(["broker RSS MiB before registration", fmt(figures.rss_before, 0)])
    rows.append(["broker RSS MiB after (all topics listed)", fmt(figures.rss_after, 0)])
    lines.append(table(["(a) registration", "value"], rows))
    lines.append("")

    now, later = figures.checked_at_once, figures.checked
    rows = [
        ["topics checked", fmt(now.topics), fmt(later.topics)],
        ["differences found", fmt(now.drift), fmt(later.drift)],
        ["differences by kind", now.kinds_text(), later.kinds_text()],
        ["read the member registry s", fmt(now.directory_seconds), fmt(later.directory_seconds)],
        ["check_topics s", fmt(now.check_seconds), fmt(later.check_seconds)],
        ["total s", fmt(now.directory_seconds + now.check_seconds),
         fmt(later.directory_seconds + later.check_seconds)],
    ]
    lines.append(table(
        ["(b) `relais topics check` equivalent", "right after (a)", "once all listed"], rows
    ))
    lines.append(
        f"every created topic listed by the broker {fmt(figures.visible_after)} s after "
        "register_members returned"
    )
    lines.append("")

    labels = list(dict.fromkeys(s.label for s in figures.starts))  # runs' order
    runs = {label: [s for s in figures.starts if s.label == label] for label in labels}
    repeats = max((len(r) for r in runs.values()), default=0)
    spread = repeats > 1
    title = "(c)/(d) hub worker start, s since spawn"
    if spread:
        title += f", median (min-max) of {repeats}"
    headers = [title, *labels]
    if len(labels) == 2:
        headers.append("difference of medians")

    def row(name: str, get: Callable[[WorkerStart], float | None], digits: int = 2) -> list[str]:
        cells = [name]
        medians: list[float | None] = []
        for label in labels:
            values = [v for v in (get(s) for s in runs[label]) if v is not None]
            middle = statistics.median(values) if values else None
            medians.append(middle)
            text = fmt(middle, digits)
            low, high = (fmt(min(values), digits), fmt(max(values), digits)) if values else ("", "")
            if spread and low != high:
                text += f" ({low}-{high})"
            cells.append(text)
        if len(medians) == 2:
            a, b = medians
            cells.append(fmt(b - a + 0.0, digits) if a is not None and b is not None else "-")
        return cells

    rows = [
        row("members in registry", lambda s: float(s.members_in_registry), 0),
        row("submissions partitions to assign", lambda s: float(s.submissions_partitions), 0),
        row("member registry read", lambda s: s.directory_ready),
        row("relais worker ready", lambda s: s.ingress_started),
        row("all submissions partitions assigned", lambda s: s.all_assigned),
        row("probe on last member answered", lambda s: s.probe_answered),
        row("worker RSS MiB when ready", lambda s: s.rss_mib, 0),
        row("worker stop (SIGTERM to exit) s", lambda s: s.stop_seconds),
    ]
    lines.append(table(headers, rows))
    lines.append(
        "(times sampled every ~0.1-0.25 s; each start uses a fresh app id, so fresh consumer "
        "groups; the probe was published before the spawn)"
    )
    for start in figures.starts:
        for note in start.notes:
            lines.append(f"note ({start.label}): {note}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.members_scale",
        description="Registration, topic check and hub worker start with many members, on a "
        "throwaway broker on free loopback ports.",
    )
    parser.add_argument("--members", type=int, default=1100, help="N members (default 1100)")
    parser.add_argument(
        "--batch", type=int, default=100,
        help="members per register_members call (default 100)",
    )
    parser.add_argument("--broker-timeout", type=float, default=180.0,
                        help="seconds for the broker to start (default 180)")
    parser.add_argument("--register-timeout", type=float, default=1800.0,
                        help="seconds for the whole registration (default 1800)")
    parser.add_argument("--start-timeout", type=float, default=300.0,
                        help="seconds from spawn to relais worker ready (default 300)")
    parser.add_argument("--ready-timeout", type=float, default=900.0,
                        help="seconds from spawn to the probe's answer (default 900)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="hub worker starts per configuration, medians shown (default 3)")
    parser.add_argument("--worker-log-level", default="INFO", choices=["DEBUG", "INFO"],
                        help="RELAIS_LOG_LEVEL of the hub worker (default INFO; its INFO "
                        "lines are the readiness markers)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (broker data, worker logs)")
    args = parser.parse_args(argv)
    if args.members < 1 or args.members > 20000:
        parser.error("--members must be between 1 and 20000")
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat must be between 1 and 20")
    if args.batch < 1:
        parser.error("--batch must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = Figures(members=args.members, batch=args.batch)

    def body(stack: contextlib.ExitStack) -> None:
        work = temp_dir(stack, "relais-bench-members-", args.keep)
        broker, figures.broker_start = start_broker(
            stack, work / "broker", args.broker_timeout
        )
        started = time.monotonic()
        load_before = load_line()
        asyncio.run(scenario(stack, args, broker, work, figures))
        print(report(figures))
        print(f"\n(benchmark ran {time.monotonic() - started:.0f} s after the broker start; "
              f"{load_before} at the start, {load_line()} at the end)")

    return run_benchmark(body)


if __name__ == "__main__":
    sys.exit(main())
