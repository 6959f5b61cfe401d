"""The delay forwarder with an in-memory consumer and producer: a record naming a topic that
is not a stage's input is skipped, and a failed rewind never lets a commit skip records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from hub.flows import FLOWS
from relais.flows.kit import stage_inputs
from relais.flows.outbound import Outbound
from relais.stages import headers as h
from relais.stages.delay_forwarder import DelayForwarder
from relais.stages.delays import tier
from relais.stages.records import FakeRecord
from tests.unit.test_stage_runner import TP, FakeBroker, FakeConsumer, FakeProducer

GROUP = "hub-acts-delivery"  # the fake producer checks the group it commits for


class PausingConsumer(FakeConsumer):
    def pause(self, *tps: Any) -> None:
        pass

    def resume(self, *tps: Any) -> None:
        pass


def delayed(targets: list[str | None]) -> list[FakeRecord]:
    out = []
    for i, target in enumerate(targets):
        headers = [(h.ATTEMPT, b"1")]
        if target is not None:
            headers.append((h.DELAY_TARGET, target.encode()))
        out.append(FakeRecord(topic="relais.delay.5s", value=f"v{i}".encode(),
                              key=f"k{i}".encode(), offset=i, timestamp=0,
                              headers=tuple(headers)))
    return out


#: What the hub allows: the declared stages' input topics.
TARGETS = frozenset(stage_inputs(FLOWS).values())


def forwarder(broker: FakeBroker) -> DelayForwarder:
    async def producer_factory(previous: Any) -> FakeProducer:
        return FakeProducer(broker)

    return DelayForwarder("fake:9092", tier("5s"), group_id=GROUP, targets=TARGETS,
                          consumer_factory=lambda: PausingConsumer(broker),
                          producer_factory=producer_factory, retry_delay=0.0)


async def run_until(stage: DelayForwarder, broker: FakeBroker, offset: int) -> None:
    await stage.start()
    try:
        for _ in range(1000):
            if broker.committed.get(TP) == offset:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"stuck at {broker.committed}")
    finally:
        await stage.stop()


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[list[Any]]:
    with capture_logs() as logs:
        yield logs


async def test_records_are_forwarded_only_to_stage_inputs(quiet_logs: list[Any]) -> None:
    broker = FakeBroker(delayed(["relais.acts.status", "relais.member.212102313.notifications",
                                 None, "no such topic \x00", "relais.acts.delivery"]))
    stage = forwarder(broker)
    await run_until(stage, broker, 5)
    assert [(o.topic, o.value) for o in broker.published] == [
        ("relais.acts.status", b"v0"), ("relais.acts.delivery", b"v4")]
    assert all(h.get(o.headers, h.DELAY_TARGET) is None for o in broker.published)
    assert stage.skipped == 3
    assert [e["event"] for e in quiet_logs if e["log_level"] == "error"].count(
        "delay.bad_target") == 3


async def test_a_failed_rewind_replaces_the_consumer_and_skips_nothing() -> None:
    broker = FakeBroker(delayed(["relais.acts.status"] * 7))
    failed = {"once": False}

    def fail_once(out: Outbound) -> BaseException | None:
        if out.value == b"v1" and not failed["once"]:
            failed["once"] = True
            return KafkaConnectionError("broker away")
        return None

    broker.send_fails = fail_once
    broker.seek_fails = 1
    stage = forwarder(broker)
    await run_until(stage, broker, 7)
    assert [o.value for o in broker.published] == [f"v{i}".encode() for i in range(7)]
    assert stage.consumer_restarts == 1 and broker.consumers[0].stopped
