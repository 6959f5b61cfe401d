"""Two hooks of the stage runner a stage may use: ``batch_scope()`` (one dict shared by the
handlers of one batch, fresh for the next) and ``on_assigned`` (the partitions the stage
holds: none when a rebalance begins, then the new assignment), on an in-memory consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import TopicPartition

from relais.flows.outbound import Outbound
from relais.stages.records import FakeRecord, InputRecord
from relais.stages.runner import StageRunner, batch_scope

TOPIC = "relais.registry.lookups"


class Consumer:
    def __init__(self, batches: list[list[FakeRecord]]) -> None:
        self.batches = batches
        self.listener: Any = None

    def subscribe(self, topics: list[str] | None = None, pattern: str | None = None,
                  listener: Any = None) -> None:
        self.listener = listener

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, 1)}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if not self.batches:
            await asyncio.sleep(0.001)
            return {}
        return {TopicPartition(TOPIC, 1): self.batches.pop(0)}


class Producer:
    def __init__(self) -> None:
        self.commits = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        self.commits += 1

    async def send(self, topic: str, value: bytes | None, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> None:
        pass

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                          group_id: str) -> None:
        pass

    async def stop(self) -> None:
        pass


def record(offset: int, key: bytes) -> FakeRecord:
    return FakeRecord(topic=TOPIC, value=b"v", key=key, partition=1, offset=offset)


async def test_handlers_of_one_batch_share_a_scope_and_the_next_batch_gets_a_new_one() -> None:
    batches = [[record(0, b"a"), record(1, b"b"), record(2, b"a")], [record(3, b"a")]]
    consumer = Consumer(batches)
    seen: list[tuple[int, int]] = []

    async def handler(rec: InputRecord) -> list[Outbound]:
        scope = batch_scope()
        assert scope is not None
        scope["count"] = scope.get("count", 0) + 1
        seen.append((rec.offset, id(scope)))
        return []

    async def producer_factory(previous: Any) -> Producer:
        return Producer()

    runner = StageRunner("fake:9092", stage="registry-lookup", group_id="g", handler=handler,
                         router=None, topics=(TOPIC,), consumer_factory=lambda: consumer,
                         producer_factory=producer_factory)
    await runner.start()
    try:
        for _ in range(2000):
            if len(seen) == 4:
                break
            await asyncio.sleep(0.001)
    finally:
        await runner.stop()
    scopes = dict(seen)
    assert scopes[0] == scopes[1] == scopes[2] != scopes[3]
    assert batch_scope() is None  # outside a batch


async def test_the_assignment_hook_hears_revocations_and_assignments() -> None:
    consumer = Consumer([])
    heard: list[set[TopicPartition]] = []

    async def on_assigned(held: set[TopicPartition]) -> None:
        heard.append(held)
        if len(heard) == 3:
            raise RuntimeError("a bug in the hook")

    async def producer_factory(previous: Any) -> Producer:
        return Producer()

    async def handler(rec: InputRecord) -> list[Outbound]:
        return []

    runner = StageRunner("fake:9092", stage="registry-lookup", group_id="g", handler=handler,
                         router=None, topics=(TOPIC,), consumer_factory=lambda: consumer,
                         producer_factory=producer_factory, on_assigned=on_assigned)
    await runner.start()
    try:
        listener = consumer.listener
        assert listener is not None
        held = {TopicPartition(TOPIC, 1), TopicPartition(TOPIC, 2)}
        await listener.on_partitions_assigned(held)
        await listener.on_partitions_revoked(held)
        await listener.on_partitions_assigned({TopicPartition(TOPIC, 2)})  # the hook raises
    finally:
        await runner.stop()
    assert heard == [held, set(), {TopicPartition(TOPIC, 2)}]


async def test_without_a_hook_a_revocation_still_waits_for_the_commit_under_way() -> None:
    consumer = Consumer([[record(0, b"k")]])
    gate = asyncio.Event()

    class SlowProducer(Producer):
        @asynccontextmanager
        async def transaction(self) -> AsyncIterator[None]:
            yield
            await gate.wait()  # the commit is under way until the gate opens
            self.commits += 1

    producer = SlowProducer()

    async def producer_factory(previous: Any) -> Producer:
        return producer

    async def handler(rec: InputRecord) -> list[Outbound]:
        return [Outbound("out", rec.key, rec.value, [])]

    runner = StageRunner("fake:9092", stage="s", group_id="g", handler=handler, router=None,
                         topics=(TOPIC,), consumer_factory=lambda: consumer,
                         producer_factory=producer_factory)
    await runner.start()
    try:
        for _ in range(2000):  # until the batch is handled and its commit started
            if runner._inflight is not None:
                break
            await asyncio.sleep(0.001)
        assert runner._inflight is not None
        revoking = asyncio.create_task(
            consumer.listener.on_partitions_revoked({TopicPartition(TOPIC, 1)}))
        await asyncio.sleep(0.02)
        assert not revoking.done(), "the rebalance went on while a commit was under way"
        gate.set()
        await asyncio.wait_for(revoking, 1.0)
        assert producer.commits == 1
    finally:
        gate.set()
        await runner.stop()
