"""The stage runner handles batch N+1 while batch N's transaction commits, and never lets
that overlap lose, skip or repeat a record: when N's commit fails, N+1's outputs are
dropped, its local writes taken back before N's, and its partitions (even those N did not
touch) are read again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from relais.flows.outbound import Outbound
from relais.stages import local_writes
from relais.stages.records import FakeRecord, InputRecord
from relais.stages.runner import Handler, StageRunner
from tests.unit.test_stage_runner import (
    DLQ,
    TOPIC,
    TP,
    FakeBroker,
    FakeConsumer,
    FakeProducer,
    echo,
    quiet_logs,  # noqa: F401  (the autouse fixture: logs captured, not rendered)
    records,
    run_until,
    runner,
)


class GatedProducer(FakeProducer):
    """Each transaction commits only once ``gate`` is open; notes how many were open at once."""

    def __init__(self, broker: FakeBroker, gate: asyncio.Event) -> None:
        super().__init__(broker)
        self.gate = gate
        self.open = 0
        self.most_open = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            async with super().transaction():
                yield
                await self.gate.wait()
        finally:
            self.open -= 1


@dataclass
class Gated:
    stage: StageRunner
    producer: GatedProducer
    gate: asyncio.Event


@asynccontextmanager
async def gated_stage(broker: FakeBroker, handle: Handler, **options: Any) -> AsyncIterator[Gated]:
    """A running stage whose commits wait for ``gate``; opened and stopped on the way out."""
    gate = asyncio.Event()
    producer = GatedProducer(broker, gate)

    async def producer_factory(previous: Any) -> GatedProducer:
        return producer

    stage = runner(broker, handle, **options)
    stage._producer_factory = producer_factory
    await stage.start()
    try:
        yield Gated(stage, producer, gate)
    finally:
        gate.set()
        await stage.stop()


def first_commit_fails() -> Callable[[Outbound], BaseException | None]:
    """A send hook: the first commit (the one sending v0) meets a broker outage, once."""
    failed = {"once": False}

    def fail_first_commit(out: Outbound) -> BaseException | None:
        if out.value == b"v0" and not failed["once"]:
            failed["once"] = True
            return KafkaConnectionError("broker away")
        return None

    return fail_first_commit


async def wait_for(condition: Any, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "never got there"
        await asyncio.sleep(0.002)


async def test_the_next_batch_is_handled_while_the_previous_one_commits() -> None:
    broker = FakeBroker(records(6))  # two batches of three
    handled: list[bytes | None] = []

    async def handle(record: InputRecord) -> list[Outbound]:
        handled.append(record.value)
        return echo(record)

    async with gated_stage(broker, handle) as run:
        await wait_for(lambda: len(handled) == 6)
        assert broker.transactions == 0 and not broker.committed, "the first commit is held"
        assert run.producer.most_open == 1, "the second commit waits for the first"
        run.gate.set()
        await wait_for(lambda: broker.committed.get(TP) == 6)
    assert [o.value for o in broker.outputs("out")] == [f"v{i}".encode() for i in range(6)]
    assert broker.transactions == 2 and run.producer.most_open == 1


async def test_without_overlap_the_next_batch_waits_for_the_commit() -> None:
    broker = FakeBroker(records(6))
    handled: list[bytes | None] = []

    async def handle(record: InputRecord) -> list[Outbound]:
        handled.append(record.value)
        return echo(record)

    async with gated_stage(broker, handle, overlap_commits=False) as run:
        await wait_for(lambda: len(handled) == 3)
        await asyncio.sleep(0.05)
        assert handled == [b"v0", b"v1", b"v2"], "nothing handled before the commit"
        run.gate.set()
        await wait_for(lambda: broker.committed.get(TP) == 6)
    assert [o.value for o in broker.outputs("out")] == [f"v{i}".encode() for i in range(6)]


async def test_a_failed_commit_takes_back_the_batch_ahead_first_then_reads_both_again() -> None:
    broker = FakeBroker(records(6))
    broker.send_fails = first_commit_fails()
    view: dict[str, bytes | None] = {}  # one key every record writes, like a flow's state
    undone: list[bytes | None] = []
    handled: list[bytes | None] = []

    async def handle(record: InputRecord) -> list[Outbound]:
        handled.append(record.value)
        before = view.get("state")
        view["state"] = record.value

        def take_back(value: bytes | None = record.value, previous: bytes | None = before) -> None:
            undone.append(value)
            view["state"] = previous

        local_writes.remember(take_back)
        await asyncio.sleep(0)  # the first batch's commit starts while this batch runs
        return echo(record)

    stage = runner(broker, handle)
    await run_until(stage, lambda: broker.committed.get(TP) == 6)
    assert handled[:6] == [f"v{i}".encode() for i in range(6)], "batch two handled ahead"
    # newest first: the batch ahead, then the failed one; the view is back to empty
    assert undone == [b"v5", b"v4", b"v3", b"v2", b"v1", b"v0"]
    assert [o.value for o in broker.outputs("out")] == [f"v{i}".encode() for i in range(6)]
    assert view["state"] == b"v5"


async def test_a_batch_ahead_of_a_commit_past_the_bug_cap_is_read_again_after_isolation() -> None:
    broker = FakeBroker(records(6))
    broker.send_fails = lambda out: (TypeError("bad header") if out.topic == "out"
                                     and out.value == b"v1" else None)

    async def handle(record: InputRecord) -> list[Outbound]:
        await asyncio.sleep(0)
        return echo(record)

    stage = runner(broker, handle, max_bug_attempts=2)
    await run_until(stage, lambda: broker.committed.get(TP) == 6)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v2", b"v3", b"v4", b"v5"]
    assert [o.value for o in broker.outputs(DLQ)] == [b"v1"]


async def test_a_handler_bug_while_the_previous_batch_commits_keeps_that_commit() -> None:
    broker = FakeBroker(records(6))
    bugs = {"left": 1}

    async def handle(record: InputRecord) -> list[Outbound]:
        if record.value == b"v4" and bugs["left"]:
            bugs["left"] -= 1
            raise RuntimeError("transient bug")
        return echo(record)

    async with gated_stage(broker, handle, router=None) as run:
        await wait_for(lambda: run.stage.stats.failed == 1)
        run.gate.set()
        await wait_for(lambda: broker.committed.get(TP) == 6)
    assert [o.value for o in broker.outputs("out")] == [f"v{i}".encode() for i in range(6)]
    assert run.stage.stats.batch_bugs == 1 and broker.outputs(DLQ) == []


TP1 = TopicPartition(TOPIC, 1)


class TwoPartitions(FakeConsumer):
    """The first batch from partition 0, the second from partition 1."""

    def __init__(self, broker: FakeBroker, other: list[FakeRecord]) -> None:
        super().__init__(broker)
        self.other = other
        self.positions = {TP: 0, TP1: 0}

    async def start(self) -> None:
        self.started = True
        self.positions = {tp: self.broker.committed.get(tp, 0) for tp in (TP, TP1)}

    def assignment(self) -> set[TopicPartition]:
        return {TP, TP1}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        for tp, source in ((TP, self.broker.records), (TP1, self.other)):
            batch = source[self.positions[tp]:self.positions[tp] + 3]
            if batch:
                self.positions[tp] += len(batch)
                return {tp: batch}
        await asyncio.sleep(0.005)
        return {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset


async def test_a_partition_only_the_batch_ahead_read_is_rewound_too() -> None:
    broker = FakeBroker(records(3))
    other = [FakeRecord(topic=TOPIC, value=f"w{i}".encode(), key=b"w", partition=1, offset=i)
             for i in range(3)]
    broker.send_fails = first_commit_fails()

    async def handle(record: InputRecord) -> list[Outbound]:
        await asyncio.sleep(0)
        return echo(record)

    consumer = TwoPartitions(broker, other)
    stage = runner(broker, handle, consumer_factory=lambda: consumer)
    await run_until(stage, lambda: broker.committed.get(TP) == 3
                    and broker.committed.get(TP1) == 3)
    values = [o.value for o in broker.outputs("out")]
    assert sorted(values) == sorted([b"v0", b"v1", b"v2", b"w0", b"w1", b"w2"]), values
    assert stage.stats.consumer_restarts == 0


def test_the_hub_builds_every_stage_runner_with_the_overlap_setting(tmp_path: Any) -> None:
    from hub.app import build_dependencies
    from relais.settings import Settings

    for overlap in (False, True):
        deps = build_dependencies(Settings.from_env(
            {}, data_dir=tmp_path / str(overlap), stage_overlap_commits=overlap))
        assert "ingress" in deps.stage_runners and "acts-delivery" in deps.stage_runners
        assert {name: stage._overlap_commits for name, stage in deps.stage_runners.items()} \
            == dict.fromkeys(deps.stage_runners, overlap)
