"""Shared pieces of the fault-injection suite.

Every module runs its own broker (a ``LocalBroker`` it can stop and start), its
own sandbox TdT and hub worker, with members whose SIRENs start with a prefix
of the module's own. Helpers here read what the hub wrote (flow states,
notifications, dead letters) and talk to the sandbox's control endpoints.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from hub.flows import FLOWS
from ops.demo_documents import minimal_pdf
from ops.dlq import DeadLetter, DeadLetterFilter, hub_stages, read_dead_letters
from ops.flows import FlowFilter, latest_states
from ops.kafka.broker import LocalBroker
from ops.members import Registration
from ops.processes import ManagedProcess
from ops.stack import (
    Stack,
    sandbox_base_port,
    sandbox_config,
    sandbox_control_client,
    sandbox_member,
    sandbox_url,
)
from ops.submissions import ActeDraft, publish_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.identifiers import luhn_check_digit
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.logs import READY_LINE
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from tests.integration.conftest import apply_hub_topics, register
from topics import member as member_topics

TERMINAL = {"acknowledged", "rejected"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sirens(prefix: str, count: int) -> list[str]:
    """``count`` valid SIRENs starting with ``prefix`` (two digits, one per module)."""
    out = []
    for n in range(count):
        body = f"{prefix}{n:06d}"
        out.append(body + str(luhn_check_digit(body)))
    return out


@dataclass
class FaultHub:
    """One module's hub: broker, sandbox TdT, worker and registered members."""

    broker: LocalBroker
    stack: Stack
    registrations: list[Registration]
    blob: BlobRef
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def sirens(self) -> list[str]:
        return [r.member.siren for r in self.registrations]

    @property
    def tdt_url(self) -> str:
        return sandbox_url(self.settings)

    def start_worker(self) -> float:
        """Start the worker and wait until its stages run; seconds it took."""
        started = time.monotonic()
        process = ManagedProcess("worker", ["worker"], self.stack.env(), self.worker_log())
        # Registered before waiting, so a worker that never gets ready is stopped too.
        self.workers.append(process)
        self.stack.processes["worker"] = process
        process.start()
        process.wait_for(READY_LINE, timeout=120)
        return time.monotonic() - started

    def worker_log(self) -> Path:
        return self.stack.log_dir / "worker.log"

    def close(self) -> None:
        self.stack.stop()
        for process in self.workers:  # earlier workers: killed already, unless a test failed
            process.stop()


def start_fault_hub(
    broker: LocalBroker,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    prefix: str,
    members: int,
    env: dict[str, str],
    faults: dict[str, Any] | None = None,
    schedule: dict[str, float] | None = None,
    seed: int = 7,
    start_worker: bool = True,
) -> FaultHub:
    """Topics, members, sandbox TdT (one account per member) and a worker on ``broker``."""
    data_dir = tmp_path_factory.mktemp(f"faults-{prefix}")
    settings = Settings.from_env(
        kafka_bootstrap=broker.bootstrap, data_dir=data_dir,
        app_id=f"relais-faults-{prefix}-{uuid.uuid4().hex[:6]}",
        sandbox_tdt_port=sandbox_base_port(),
        api_port=free_port(),
    )
    registrations = [sandbox_member(settings, siren, f"Commune {prefix}-{i}", "021")
                     for i, siren in enumerate(sirens(prefix, members))]
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, registrations))
    store = FilesystemBlobStore(settings.blob_dir)
    blob = asyncio.run(store.put_bytes(
        minimal_pdf("acte"), media_type="application/pdf", filename="acte.pdf"))
    for registration in registrations:  # each member references it: each owns it
        asyncio.run(store.grant(blob.sha256, registration.member.siren))
    stack = Stack(settings, data_dir / "logs", extra_env={
        "RELAIS_LOG_LEVEL": "INFO", **env,
    })
    hub = FaultHub(broker, stack, registrations, blob)
    try:
        stack.start_sandbox(sandbox_config(registrations, faults=faults, schedule=schedule,
                                           seed=seed))
        if start_worker:
            hub.start_worker()
    except BaseException:
        hub.close()
        raise
    return hub


def module_fault_hub(
    broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory, **options: Any
) -> Iterator[FaultHub]:
    """:func:`start_fault_hub` for a module fixture (``yield from``): closed at teardown."""
    running = start_fault_hub(broker, tmp_path_factory, **options)
    try:
        yield running
    finally:
        running.close()


STEADY_ENV = {
    "RELAIS_RETRY_TIERS": "5s,5s,5s,5s,5s,5s,5s,5s",
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "5",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}
"""The hub's settings for runs whose partner behaves: eight 5 s retries, 5 s TdT timeout."""


# -- submissions ------------------------------------------------------------------------


def drafts(siren: str, blob: BlobRef, count: int, *, start: int = 0,
           tag: str = "F") -> list[ActeDraft]:
    """``count`` valid actes of one member (distinct numbers, every nature)."""
    return [
        ActeDraft(
            submission_id=f"{siren}-{tag}{i}", member_siren=siren, nature_code=1 + i % 6,
            matieres=(1 + i % 9, 1), numero_interne=f"{tag}{i:05d}",
            decision_date=date(2026, 11, 2), objet=f"Acte de test numéro {i}", document=blob,
        )
        for i in range(start, start + count)
    ]


def flow_of(draft: ActeDraft) -> str:
    return flow_id_for(draft.member_siren, draft.submission_id)


async def publish_drafts(bootstrap: str, items: list[ActeDraft]) -> None:
    publisher = Publisher(bootstrap, AvroCodec(), client_id="fault-tests")
    await publisher.start()
    try:
        for draft in items:
            await publish_acte(publisher, draft)
    finally:
        await publisher.stop()


def interleaved(per_member: list[list[ActeDraft]]) -> list[ActeDraft]:
    """One acte of each member in turn, so every member's actes flow all along."""
    out: list[ActeDraft] = []
    for row in range(max(len(m) for m in per_member)):
        out += [m[row] for m in per_member if row < len(m)]
    return out


# -- reading what the hub wrote ---------------------------------------------------------


async def flow_states(bootstrap: str, flows: set[str] | dict[str, str]) -> dict[str, str]:
    """The latest state of each of ``flows`` that has one."""
    found = await latest_states(bootstrap, FlowFilter())
    return {s["flow_id"]: s["state"] for s in found if s["flow_id"] in flows}


async def dead_letters(bootstrap: str, **filters: Any) -> list[DeadLetter]:
    filters.setdefault("stages", hub_stages(FLOWS))
    return [letter async for letter in read_dead_letters(bootstrap, DeadLetterFilter(**filters))]


async def wait_for_states(
    bootstrap: str,
    flows: set[str] | dict[str, str],
    done: Any,
    *,
    timeout: float,
    every: float = 2.0,
    dead_lettered: bool = False,
    stalled_after: float | None = None,
) -> tuple[dict[str, str], set[str]]:
    """Poll until ``done(states, dead_flows)`` holds or ``timeout`` passes; the last reading.

    ``dead_flows`` is the set of flow ids found in a dead-letter topic when
    ``dead_lettered`` is set (empty otherwise). With ``stalled_after``, give up
    early once nothing moved for that many seconds (a stuck hub fails fast).
    """
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] = ()
    moved_at = time.monotonic()
    while True:
        states = await flow_states(bootstrap, flows)
        dead: set[str] = set()
        if dead_lettered:
            dead = {d.flow_id for d in await dead_letters(bootstrap) if d.flow_id}
        if done(states, dead) or time.monotonic() > deadline:
            return states, dead
        snapshot = (sorted(Counter(states.values()).items()), len(dead))
        if snapshot != last:
            last, moved_at = snapshot, time.monotonic()
        elif stalled_after is not None and time.monotonic() - moved_at > stalled_after:
            print(f"  nothing moved for {stalled_after:.0f} s: {dict(snapshot[0])}, "
                  f"{snapshot[1]} dead-lettered")
            return states, dead
        await asyncio.sleep(every)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of ``topic`` (all partitions), up to its end when called."""
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = await consumer._client._wait_on_metadata(topic)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        end = await consumer.end_offsets(assigned)  # before the fetcher's long poll starts
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        out: list[Any] = []
        while [tp for tp in assigned if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                out += records
        return out
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned: list[TopicPartition] = []
        for topic in topics:
            partitions = await consumer._client._wait_on_metadata(topic)
            assigned += [TopicPartition(topic, p) for p in sorted(partitions)]
        return dict(await consumer.end_offsets(assigned))
    finally:
        await consumer.stop()


async def notifications(bootstrap: str, siren: str) -> list[dict[str, Any]]:
    codec = AvroCodec()
    records = await read_topic(bootstrap, member_topics.notifications(siren).name)
    return [codec.decode(r.value, expected="Notification").record for r in records]


# -- the sandbox TdT ----------------------------------------------------------------------


async def sandbox_stats(hub: FaultHub) -> dict[str, Any]:
    async with sandbox_control_client(hub.settings) as client:
        response = await client.get(f"{hub.tdt_url}/sandbox/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats


async def set_faults(hub: FaultHub, **knobs: Any) -> dict[str, Any]:
    async with sandbox_control_client(hub.settings) as client:
        response = await client.post(f"{hub.tdt_url}/sandbox/faults", json=knobs)
        response.raise_for_status()
        faults: dict[str, Any] = response.json()
        return faults


def log_count(path: Path, marker: str) -> int:
    """How many lines of a log mention ``marker`` (for the figures printed)."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if marker.encode() in line)


async def open_transactions(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Partitions whose last stable offset lags their high watermark (an open transaction
    holds read_committed consumers there), with the records held back."""
    ends: dict[str, dict[TopicPartition, int]] = {}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, isolation_level=isolation)
        await consumer.start()
        try:
            assigned: list[TopicPartition] = []
            for topic in topics:
                partitions = await consumer._client._wait_on_metadata(topic)
                assigned += [TopicPartition(topic, p) for p in sorted(partitions)]
            ends[isolation] = dict(await consumer.end_offsets(assigned))
        finally:
            await consumer.stop()
    return {
        f"{tp.topic}:{tp.partition}": ends["read_uncommitted"][tp] - lso
        for tp, lso in ends["read_committed"].items()
        if ends["read_uncommitted"][tp] - lso > 1
    }


INTERNAL_TOPICS = [
    "relais.acts.submitted", "relais.acts.delivery", "relais.acts.status",
    "relais.journal.deliveries",
    "relais.flows.events", "relais.flows.state", "relais.delay.5s", "relais.delay.30s",
]
