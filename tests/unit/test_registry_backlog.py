"""registry-lookup under a backlog, on the real stage runner with an in-memory partition.

The look-ups of one batch share a wait budget (``max_wait``, counted from when the batch's
first look-up reached the handler) and a batch holds at most ``BATCH_RECORDS`` look-ups, so
each answer is committed within ``max_wait`` of its registry call and the look-ups whose
number's slot is far away are parked at once with one ``pending`` notification. Time is a
simulated clock: the service's waits advance it, and parked look-ups come back from their
delay tier when it reaches their due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from agents.registry.lookup import BATCH_RECORDS, LookupDeps, handle_lookup
from agents.registry.service import LookupService, Quota
from connectors.registries.models import NotFound, Registry
from relais.flows.outbound import Outbound
from relais.identifiers import luhn_check_digit
from relais.registry.cache import RegistryCache
from relais.stages import headers as h
from relais.stages.records import FakeRecord, InputRecord
from relais.stages.runner import StageRunner
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import SIREN, flow_of, record_of
from topics import member as member_topics
from topics.delays import TIERS
from topics.registry import REGISTRY_LOOKUPS

TP = TopicPartition(REGISTRY_LOOKUPS.name, 1)
GROUP = "hub-registry-lookup"
MAX_WAIT = 5.0
QUOTA = Quota(30, 60.0)
TIER_SECONDS = {tier.topic.name: tier.seconds for tier in TIERS}


@dataclass
class Sim:
    """The simulated clock, the partition, the delay tiers and what was committed."""

    now: float = 1_000_000.0
    queue: list[FakeRecord] = field(default_factory=list)
    delayed: list[tuple[float, FakeRecord]] = field(default_factory=list)
    offset: int = 0
    first_read: dict[str, float] = field(default_factory=dict)
    calls: dict[str, float] = field(default_factory=dict)
    committed: list[tuple[float, Outbound]] = field(default_factory=list)

    def append(self, record: FakeRecord) -> None:
        self.queue.append(FakeRecord(topic=record.topic, value=record.value, key=record.key,
                                     partition=TP.partition, offset=self.offset,
                                     headers=record.headers))
        self.offset += 1

    def release_due(self) -> None:
        due = sorted((d for d in self.delayed if d[0] <= self.now), key=lambda d: d[0])
        self.delayed = [d for d in self.delayed if d[0] > self.now]
        for _, record in due:
            self.append(record)


async def settle_ready_tasks() -> None:
    """Let the tasks ready now (the previous batch's commit, running while the next batch is
    handled) run before the simulated clock moves: they take no simulated time."""
    for _ in range(3):
        await asyncio.sleep(0)


class Consumer:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def subscribe(self, topics: list[str] | None = None, **_: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        sim = self.sim
        await settle_ready_tasks()  # a commit under way (a task) takes no simulated time
        sim.release_due()
        if not sim.queue and sim.delayed:  # idle until the next parked look-up is due
            sim.now = min(due for due, _ in sim.delayed)
            sim.release_due()
        batch, sim.queue = sim.queue[:max_records], sim.queue[max_records:]
        if not batch:
            await asyncio.sleep(0.001)
            return {}
        for record in batch:
            sim.first_read.setdefault(h.get(record.headers, "relais_flow_id") or "", sim.now)
        return {TP: batch}


class Producer:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.pending: list[Outbound] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.pending = []
        yield
        for out in self.pending:
            self.sim.committed.append((self.sim.now, out))
            if out.topic in TIER_SECONDS:  # the delay forwarder, back to the look-ups
                back = FakeRecord(topic=REGISTRY_LOOKUPS.name, value=out.value, key=out.key,
                                  headers=tuple(out.headers))
                self.sim.delayed.append((self.sim.now + TIER_SECONDS[out.topic], back))

    async def send(self, topic: str, value: bytes | None, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> None:
        self.pending.append(Outbound(topic, key, value, headers))

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                          group_id: str) -> None:
        pass

    async def stop(self) -> None:
        pass


class Connector:
    """A registry that knows nobody, and notes when each number was asked."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def lookup(self, identifier: str) -> NotFound:
        assert identifier not in self.sim.calls, f"{identifier} asked twice"
        self.sim.calls[identifier] = self.sim.now
        return NotFound(Registry.SIRENE, identifier, "unknown")


def numbers(count: int) -> list[str]:
    bodies = [f"9{i:07d}" for i in range(count)]
    return [body + str(luhn_check_digit(body)) for body in bodies]


def lookup_record(codec: AvroCodec, request: str, number: str) -> FakeRecord:
    value = {"request_id": request, "member_siren": SIREN, "identifier": number,
             "registry": "SIRENE", "purpose": None, "contract_submission_id": None}
    made = record_of(codec, "RegistryLookup", value, REGISTRY_LOOKUPS.name, flow_of(request))
    return FakeRecord(topic=made.topic, value=made.value, key=made.key, headers=made.headers)


async def test_a_backlog_answers_each_look_up_soon_after_its_call_and_parks_the_far_ones(
) -> None:
    codec = AvroCodec()
    sim = Sim()

    async def sleep(seconds: float) -> None:
        await settle_ready_tasks()
        sim.now += seconds
        await asyncio.sleep(0)

    service = LookupService({"sirene": Connector(sim)}, {"sirene": QUOTA}, RegistryCache(),
                            clock=lambda: sim.now, sleep=sleep, max_wait=MAX_WAIT)
    deps = LookupDeps(codec=codec, service=service, max_wait=MAX_WAIT)
    distinct = numbers(40)
    requests = {f"req-{i:03d}": distinct[i % len(distinct)] for i in range(240)}
    for request, number in requests.items():
        sim.append(lookup_record(codec, request, number))

    async def handler(record: InputRecord) -> list[Outbound]:
        return await handle_lookup(record, deps)

    async def producer_factory(previous: Any) -> Producer:
        return Producer(sim)

    runner = StageRunner("fake:9092", stage="registry-lookup", group_id=GROUP, handler=handler,
                         router=None, topics=(REGISTRY_LOOKUPS.name,),
                         consumer_factory=lambda: Consumer(sim),
                         producer_factory=producer_factory, max_records=BATCH_RECORDS)
    notes_topic = member_topics.notifications(SIREN).name

    def notes() -> list[tuple[float, dict[str, Any]]]:
        return [(at, codec.decode(out.value or b"", expected="Notification").record)
                for at, out in sim.committed if out.topic == notes_topic]

    def answered() -> set[str]:
        return {n["submission_id"] for _, n in notes() if n["state"] == "answered"}

    with capture_logs():
        await runner.start()
        try:
            for _ in range(20_000):
                if answered() >= set(requests):
                    break
                await asyncio.sleep(0.001)
        finally:
            await runner.stop()

    assert answered() == set(requests), f"{len(set(requests) - answered())} unanswered"
    assert runner.stats.failed == 0 and runner.stats.batch_bugs == 0
    # each number asked once, never more than the bucket allows in a rolling minute
    assert sorted(sim.calls) == sorted(distinct)
    times = sorted(sim.calls.values())
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 29
    # every answer a call produced was committed within the batch's budget of that call
    flow_numbers = {flow_of(request): number for request, number in requests.items()}
    for at, note in notes():
        if note["state"] == "answered" and note["details"]["from_cache"] == "false":
            number = flow_numbers[note["flow_id"]]
            assert at - sim.calls[number] <= MAX_WAIT + 1e-6, (number, at - sim.calls[number])
    # the backlog was told it waits: one pending each at most, within the budget of its read
    pending: dict[str, int] = {}
    for at, note in notes():
        if note["state"] == "pending":
            pending[note["flow_id"]] = pending.get(note["flow_id"], 0) + 1
            assert at - sim.first_read[note["flow_id"]] <= MAX_WAIT + 1e-6
            assert note["details"]["registry"] == "sirene"
    assert set(pending.values()) == {1}
    assert len(pending) >= len(requests) // 2  # the far ones (40 numbers take ~85 s)
    # a batch never held its answers long: the simulated minutes went by in many commits
    assert times[-1] - times[0] > 60


def test_the_lookup_stage_is_declared_with_a_small_batch_and_an_assignment_hook() -> None:
    from agents.registry.flow import REGISTRY, on_lookups_assigned

    [stage] = [s for s in REGISTRY.stages if s.name == "registry-lookup"]
    assert stage.max_batch_records == BATCH_RECORDS <= 100
    assert stage.on_assigned is on_lookups_assigned


@pytest.mark.parametrize("limit", [MAX_WAIT])
async def test_outside_a_runner_each_look_up_has_a_budget_of_its_own(limit: float) -> None:
    from agents.registry.lookup import batch_deadline

    now = [100.0]
    service = LookupService({}, {}, RegistryCache(), clock=lambda: now[0])
    deps = LookupDeps(codec=AvroCodec(), service=service, max_wait=limit)
    assert batch_deadline(deps) == 100.0 + limit
    now[0] = 130.0
    assert batch_deadline(deps) == 130.0 + limit
