"""The stage runner with an in-memory consumer and producer: a failed rewind restarts the
consumer (nothing skipped), a bug in a batch is retried a bounded number of times with
backoff, then the batch is handled record by record and what still fails is dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
)
from structlog.testing import capture_logs

from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.stages import headers as h
from relais.stages.failures import FailureRouter, RetryPolicy
from relais.stages.records import FakeRecord, InputRecord, without_internal_headers
from relais.stages.runner import StageRunner
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER

TOPIC = "relais.acts.delivery"
TP = TopicPartition(TOPIC, 0)
GROUP = "hub-acts-delivery"
DLQ = "relais.dlq.acts-delivery"


@dataclass
class FakeBroker:
    """One partition, the group's committed offset and what transactions published."""

    records: list[FakeRecord]
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    published: list[Outbound] = field(default_factory=list)
    transactions: int = 0
    consumers: list[FakeConsumer] = field(default_factory=list)
    send_fails: Callable[[Outbound], BaseException | None] = lambda out: None
    seek_fails: int = 0  # the next N seeks raise
    committed_fails: int = 0  # the next N committed() calls raise

    def outputs(self, topic: str) -> list[Outbound]:
        return [o for o in self.published if o.topic == topic]


class FakeConsumer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.position = 0
        self.started = self.stopped = False
        broker.consumers.append(self)

    def subscribe(self, topics: list[str] | None = None, pattern: str | None = None,
                  listener: Any = None) -> None:
        self.subscribed = topics or pattern

    async def start(self) -> None:
        self.started = True
        self.position = self.broker.committed.get(TP, 0)  # a new member starts at the commit

    async def stop(self) -> None:
        self.stopped = True

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        assert not self.stopped, "a stopped consumer was read"
        batch = self.broker.records[self.position:self.position + 3]
        if not batch:
            await asyncio.sleep(0.005)
            return {}
        self.position += len(batch)
        return {TP: batch}

    async def committed(self, tp: TopicPartition) -> int | None:
        if self.broker.committed_fails:
            self.broker.committed_fails -= 1
            raise KafkaConnectionError("coordinator away")
        return self.broker.committed.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if self.broker.seek_fails:
            self.broker.seek_fails -= 1
            raise IllegalStateError("seek refused")
        self.position = offset

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seek(tp, 0)


class FakeProducer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self._pending: list[Outbound] = []
        self._offsets: dict[TopicPartition, int] = {}

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._pending, self._offsets = [], {}
        yield  # an exception aborts: nothing published, nothing committed
        self.broker.published += self._pending
        self.broker.committed.update(self._offsets)
        self.broker.transactions += 1

    async def send(self, topic: str, value: bytes | None, *, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> None:
        out = Outbound(topic, key, value, headers)
        failure = self.broker.send_fails(out)
        if failure is not None:
            raise failure
        self._pending.append(out)

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                          group_id: str) -> None:
        assert group_id == GROUP
        self._offsets.update(offsets)

    async def stop(self) -> None:
        pass


def records(count: int) -> list[FakeRecord]:
    return [FakeRecord(topic=TOPIC, value=f"v{i}".encode(), key=f"k{i}".encode(), offset=i,
                       headers=((FLOW_ID_HEADER, flow_id_for("212102313", f"s{i}").encode()),
                                (h.MEMBER, b"212102313")))
            for i in range(count)]


def echo(record: InputRecord) -> list[Outbound]:
    return [Outbound("out", record.key, record.value, [])]


def runner(broker: FakeBroker, handler: Callable[[InputRecord], Awaitable[list[Outbound]]],
           **options: Any) -> StageRunner:
    async def producer_factory(previous: Any) -> FakeProducer:
        return FakeProducer(broker)

    options.setdefault("router", FailureRouter(stage="acts-delivery", group_id=GROUP,
                                               flow_type="acte", dlq_topic=DLQ,
                                               codec=AvroCodec(), policy=RetryPolicy(())))
    options.setdefault("consumer_factory", lambda: FakeConsumer(broker))
    return StageRunner("fake:9092", stage="acts-delivery", group_id=GROUP, handler=handler,
                       topics=(TOPIC,), producer_factory=producer_factory, retry_delay=0.0,
                       bug_backoff=0.001, max_bug_backoff=0.004, **options)


async def run_until(stage: StageRunner, done: Callable[[], bool], timeout: float = 5.0) -> None:
    await stage.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            assert asyncio.get_running_loop().time() < deadline, "the stage did not get there"
            await asyncio.sleep(0.005)
    finally:
        await stage.stop()


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[list[Any]]:
    """Captured, not rendered: rendering each traceback would take most of the time."""
    with capture_logs() as logs:
        yield logs


# --- rewind ---------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["seek", "committed"])
async def test_a_failed_rewind_restarts_the_consumer_and_skips_nothing(failing: str) -> None:
    broker = FakeBroker(records(7))
    sends = {"failed": False}

    def fail_once(out: Outbound) -> BaseException | None:
        if out.value == b"v3" and not sends["failed"]:
            sends["failed"] = True
            return KafkaConnectionError("broker away")  # the batch of v3 must be read again
        return None

    broker.send_fails = fail_once
    if failing == "seek":
        broker.seek_fails = 1
    else:
        broker.committed_fails = 1

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record)

    stage = runner(broker, handle)
    with capture_logs() as logs:
        await run_until(stage, lambda: broker.committed.get(TP) == 7)
    values = [o.value for o in broker.outputs("out")]
    assert values == [f"v{i}".encode() for i in range(7)], "every record once, none skipped"
    assert stage.stats.consumer_restarts == 1
    assert len(broker.consumers) == 2 and broker.consumers[0].stopped
    assert "stage.rewind_failed" in [e["event"] for e in logs if e["log_level"] == "error"]


async def test_a_successful_rewind_keeps_the_consumer() -> None:
    broker = FakeBroker(records(4))
    failed = {"once": False}

    def fail_once(out: Outbound) -> BaseException | None:
        if not failed["once"]:
            failed["once"] = True
            return KafkaConnectionError("broker away")
        return None

    broker.send_fails = fail_once

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record)

    stage = runner(broker, handle)
    await run_until(stage, lambda: broker.committed.get(TP) == 4)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v1", b"v2", b"v3"]
    assert stage.stats.consumer_restarts == 0 and len(broker.consumers) == 1


# --- bugs -----------------------------------------------------------------------------------


async def test_a_bug_is_retried_with_backoff_then_only_its_record_is_dead_lettered() -> None:
    broker = FakeBroker(records(6))
    calls: dict[bytes | None, int] = {}

    async def handle(record: InputRecord) -> list[Outbound]:
        calls[record.value] = calls.get(record.value, 0) + 1
        return echo(record)

    class BuggyRouter:
        dlq_topic = DLQ

        def route(self, record: InputRecord, exc: BaseException) -> list[Outbound]:
            raise AssertionError("router bug")

        def dead_letter(self, record: InputRecord, exc: BaseException, **_: Any) -> list[Outbound]:
            raise AssertionError("router bug")

    async def poison_on_v4(record: InputRecord) -> list[Outbound]:
        if record.value == b"v4":
            calls[b"v4"] = calls.get(b"v4", 0) + 1
            raise ZeroDivisionError("handler bug")
        return await handle(record)

    stage = runner(broker, poison_on_v4, router=BuggyRouter(), max_bug_attempts=4)
    with capture_logs() as logs:
        await run_until(stage, lambda: broker.committed.get(TP) == 6)

    assert calls[b"v4"] == 4 + 1, "4 attempts in the batch, then once on its own"
    delays = [e["retry_in"] for e in logs if e["event"] == "stage.batch_bug_will_retry"]
    assert delays == [0.001, 0.002, 0.004], "backoff doubles, capped"
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v1", b"v2", b"v3", b"v5"]
    (letter,) = broker.outputs(DLQ)
    assert letter.value == b"v4" and letter.key == b"k4"
    assert h.get(letter.headers, h.DLQ_ORIGIN_OFFSET) == "4"
    assert h.get(letter.headers, h.DLQ_GROUP) == GROUP
    # what broke last is the router; the stack shows the handler's error it was routing
    assert h.get(letter.headers, h.DLQ_ERROR_CLASS) == "builtins.AssertionError"
    stack = h.get(letter.headers, h.DLQ_STACK) or ""
    assert "ZeroDivisionError: handler bug" in stack and "router bug" in stack
    assert h.get(letter.headers, h.ATTEMPT) == "4"
    assert stage.stats.bug_dead_letters == 1


async def test_past_the_cap_the_member_is_told_through_the_router() -> None:
    broker = FakeBroker(records(2))

    async def poison(record: InputRecord) -> list[Outbound]:
        if record.value == b"v1":
            raise RuntimeError("bug")
        return echo(record)

    stage = runner(broker, poison, router=None, max_bug_attempts=2)
    await run_until(stage, lambda: broker.committed.get(TP) == 2)
    (letter,) = broker.outputs("relais.dlq.acts-delivery")
    assert letter.value == b"v1"
    assert broker.outputs("out")[0].value == b"v0"

    # with a router, the dead letter comes with a FAILED notice to the member
    told = FakeBroker(records(2))
    stage = runner(told, poison, max_bug_attempts=2)

    stage._router = _RaisingRoute(stage._router)  # type: ignore[arg-type, assignment]
    await run_until(stage, lambda: told.committed.get(TP) == 2)
    assert [o.topic for o in told.published if o.topic != "out"] == [
        DLQ, "relais.member.212102313.notifications", "relais.flows.events"]


class _RaisingRoute:
    """A router whose ``route`` has a bug but whose ``dead_letter`` works."""

    def __init__(self, inner: FailureRouter) -> None:
        self.inner = inner
        self.dlq_topic = inner.dlq_topic

    def route(self, record: InputRecord, exc: BaseException) -> list[Outbound]:
        raise TypeError("route bug")

    def dead_letter(self, record: InputRecord, exc: BaseException, **kwargs: Any) -> list[Outbound]:
        return self.inner.dead_letter(record, exc, **kwargs)


async def test_an_output_the_producer_refuses_is_dead_lettered_after_the_cap() -> None:
    broker = FakeBroker(records(3))
    broker.send_fails = lambda out: (TypeError("bad header") if out.topic == "out"
                                     and out.value == b"v1" else None)

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record)

    stage = runner(broker, handle, max_bug_attempts=3)
    await run_until(stage, lambda: broker.committed.get(TP) == 3)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v2"]
    assert [o.value for o in broker.outputs(DLQ)] == [b"v1"]


async def test_a_bug_that_goes_away_dead_letters_nothing() -> None:
    broker = FakeBroker(records(3))
    flaky = {"left": 2}

    async def handle(record: InputRecord) -> list[Outbound]:
        if record.value == b"v1" and flaky["left"]:
            flaky["left"] -= 1
            raise RuntimeError("transient bug")
        return echo(record)

    stage = runner(broker, handle, router=None, max_bug_attempts=5)
    await run_until(stage, lambda: broker.committed.get(TP) == 3)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v1", b"v2"]
    assert broker.outputs("relais.dlq.acts-delivery") == []
    assert stage.stats.batch_bugs == 2


async def test_kafka_errors_are_waited_out_never_dead_lettered() -> None:
    broker = FakeBroker(records(2))
    failures = {"left": 8}

    def outage(out: Outbound) -> BaseException | None:
        if failures["left"]:
            failures["left"] -= 1
            return KafkaError("broker away")
        return None

    broker.send_fails = outage

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record)

    stage = runner(broker, handle, max_bug_attempts=2)
    await run_until(stage, lambda: broker.committed.get(TP) == 2)
    assert broker.outputs(DLQ) == []
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v1"]


async def test_prepare_runs_before_the_handler_and_the_router() -> None:
    broker = FakeBroker(records(1))
    seen: list[Any] = []

    async def handle(record: InputRecord) -> list[Outbound]:
        seen.append(record.headers)
        raise ValueError("refused")

    stage = runner(broker, handle, prepare=without_internal_headers)
    await run_until(stage, lambda: broker.committed.get(TP) == 1)
    assert seen == [()]
    assert [o.topic for o in broker.published] == [DLQ], "no member to tell: headers dropped"


async def test_a_fetch_the_client_cannot_parse_does_not_end_the_stage() -> None:
    broker = FakeBroker(records(2))
    failures = {"left": 2}
    original = FakeConsumer.getmany

    async def flaky(self: FakeConsumer, timeout_ms: int, max_records: int) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return await original(self, timeout_ms, max_records)

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record)

    stage = runner(broker, handle)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeConsumer, "getmany", flaky)
        await run_until(stage, lambda: broker.committed.get(TP) == 2)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v1"]


async def test_an_output_too_large_for_kafka_is_a_bug_not_an_outage() -> None:
    broker = FakeBroker(records(3))
    broker.send_fails = lambda out: (MessageSizeTooLargeError() if out.topic == "out"
                                     and out.value == b"v1" else None)

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record)

    stage = runner(broker, handle, max_bug_attempts=2)
    await run_until(stage, lambda: broker.committed.get(TP) == 3)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v2"]
    (letter,) = broker.outputs(DLQ)
    assert letter.value == b"v1"
    assert h.get(letter.headers, h.DLQ_ERROR_CLASS) == "aiokafka.errors.MessageSizeTooLargeError"


# --- output-less batches --------------------------------------------------------------------


async def test_output_less_batches_commit_with_the_next_transaction() -> None:
    broker = FakeBroker(records(9))  # the fake consumer hands out batches of 3

    async def handle(record: InputRecord) -> list[Outbound]:
        return echo(record) if record.offset == 8 else []  # only the last batch publishes

    stage = runner(broker, handle)
    await run_until(stage, lambda: broker.committed.get(TP) == 9)
    assert [o.value for o in broker.outputs("out")] == [b"v8"]
    assert broker.transactions == 1, "the two output-less batches opened no transaction"
    assert stage.stats.batches == 3 and stage.stats.transactions == 1


async def test_output_less_batches_are_committed_once_the_input_is_idle() -> None:
    broker = FakeBroker(records(5))

    async def handle(record: InputRecord) -> list[Outbound]:
        return []

    stage = runner(broker, handle)
    await run_until(stage, lambda: broker.committed.get(TP) == 5)
    assert broker.transactions == 1 and broker.published == []


async def test_pending_offsets_of_a_revoked_partition_are_never_committed() -> None:
    broker = FakeBroker(records(3))

    class Revoking(FakeConsumer):
        revoked = False
        polls = 0

        def assignment(self) -> set[TopicPartition]:
            return set() if self.revoked else {TP}

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
            self.polls += 1
            return await super().getmany(timeout_ms, max_records)

    consumer = Revoking(broker)

    async def handle(record: InputRecord) -> list[Outbound]:
        consumer.revoked = True  # a rebalance takes the partition while the batch is handled
        return []

    stage = runner(broker, handle, consumer_factory=lambda: consumer)
    polls: list[int] = []

    def idle_a_while() -> bool:  # handled, then polled idle a few times
        if stage.stats.handled == 3 and not polls:
            polls.append(consumer.polls)
        return bool(polls) and consumer.polls >= polls[0] + 3

    await run_until(stage, idle_a_while)
    assert TP not in broker.committed and broker.transactions == 0


# --- concurrency ----------------------------------------------------------------------------


async def test_keys_run_concurrently_up_to_the_cap_and_each_key_in_order() -> None:
    keyed = [FakeRecord(topic=TOPIC, value=f"v{i}".encode(), key=f"k{i % 2}".encode(), offset=i,
                        headers=()) for i in range(3)]  # one batch: k0, k1, k0
    broker = FakeBroker(keyed)
    running: list[bytes | None] = []
    most = {"at_once": 0}
    order: list[bytes | None] = []

    async def handle(record: InputRecord) -> list[Outbound]:
        running.append(record.key)
        most["at_once"] = max(most["at_once"], len(running))
        await asyncio.sleep(0.01)
        running.remove(record.key)
        order.append(record.value)
        return echo(record)

    stage = runner(broker, handle, concurrency=2)
    await run_until(stage, lambda: broker.committed.get(TP) == 3)
    assert most["at_once"] == 2, "the two keys were handled side by side"
    assert order.index(b"v0") < order.index(b"v2"), "one key's records in offset order"

    broker = FakeBroker(keyed)
    most["at_once"] = 0
    await run_until(runner(broker, handle, concurrency=1), lambda: broker.committed.get(TP) == 3)
    assert most["at_once"] == 1
