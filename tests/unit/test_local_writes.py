"""Local view writes of a record whose outputs were never committed are taken back: a
handler that raised, a batch whose transaction failed. Durable writes stay."""

from __future__ import annotations

from typing import Any

from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from relais.flows.outbound import Outbound
from relais.kafka.compacted_view import CompactedView
from relais.stages import local_writes
from relais.stages.records import InputRecord
from relais.wire.avro_codec import AvroCodec
from tests.unit.test_stage_runner import TP, FakeBroker, records, run_until, runner


def view() -> CompactedView[str]:
    return CompactedView("fake:9092", AvroCodec(), topic="t", schema_name="X",
                         parse=lambda record: str(record))


def test_a_collected_write_is_taken_back_and_a_durable_one_is_not() -> None:
    links = view()
    links.put_local("a", "before")
    writes: list[local_writes.Undo] = []
    with local_writes.collect(writes):
        links.put_local("a", "during")
        links.put_local("b", "new")
        with local_writes.durable():
            links.put_local("c", "acknowledged")
    assert (links.get("a"), links.get("b"), links.get("c")) == ("during", "new", "acknowledged")
    local_writes.undo(writes)
    assert (links.get("a"), links.get("b"), links.get("c")) == ("before", None, "acknowledged")
    assert writes == []


def test_a_value_replaced_since_is_left_alone() -> None:
    links = view()
    writes: list[local_writes.Undo] = []
    with local_writes.collect(writes):
        links.put_local("a", "uncommitted")
    links.put_local("a", "from the broker")  # the view's follower, outside any handling
    local_writes.undo(writes)
    assert links.get("a") == "from the broker"


def test_outside_a_stage_runner_nothing_is_collected() -> None:
    links = view()
    links.put_local("a", "x")
    local_writes.undo([])
    assert links.get("a") == "x"


async def test_a_failed_transaction_takes_the_batch_s_local_writes_back() -> None:
    """Like validation: a record already in the view is a duplicate and forwards nothing.
    The first transaction fails; read again, the batch must find its own writes gone."""
    broker = FakeBroker(records(3))
    seen = view()
    failed = {"once": False}

    def fail_once(out: Outbound) -> BaseException | None:
        if not failed["once"]:
            failed["once"] = True
            return KafkaConnectionError("broker away")
        return None

    broker.send_fails = fail_once

    async def handle(record: InputRecord) -> list[Outbound]:
        key = (record.key or b"").decode()
        if seen.get(key) is not None:
            return []  # "a duplicate"
        seen.put_local(key, "validated")
        return [Outbound("out", record.key, record.value, [])]

    stage = runner(broker, handle)
    await run_until(stage, lambda: broker.committed.get(TP) == 3)
    assert [o.value for o in broker.outputs("out")] == [b"v0", b"v1", b"v2"]


async def test_a_handler_that_raises_leaves_no_local_write() -> None:
    broker = FakeBroker(records(1))
    seen = view()
    calls: list[Any] = []

    async def handle(record: InputRecord) -> list[Outbound]:
        calls.append(seen.get("k0"))
        seen.put_local("k0", "half done")
        raise RuntimeError("after the local write")

    stage = runner(broker, handle)
    with capture_logs():
        await run_until(stage, lambda: stage.stats.failed == 1)
    assert seen.get("k0") is None and calls == [None]
