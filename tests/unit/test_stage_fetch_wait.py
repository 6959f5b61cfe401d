"""A stage's fetch wait and batch cap reach its consumer; acts-delivery's batches stay
within the runner's workers so that all of a batch's posts run at once."""

from __future__ import annotations

import pytest

from agents.acts.flow import ACTS, DELIVERY_BATCH_RECORDS, DELIVERY_FETCH_MAX_WAIT_MS
from relais.flows.outbound import Outbound
from relais.stages.records import InputRecord
from relais.stages.runner import DEFAULT_FETCH_MAX_WAIT_MS, StageRunner


@pytest.fixture(autouse=True)
def _no_local_broker_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a consumer must not depend on a local broker's credentials file (a fresh
    clone has none): plain connections, as with an external unsecured cluster."""
    monkeypatch.setenv("RELAIS_KAFKA_AUTH", "off")


async def _handler(record: InputRecord) -> list[Outbound]:
    return []


def _runner(fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS) -> StageRunner:
    return StageRunner("127.0.0.1:9", stage="s", group_id="g", handler=_handler,
                       router=None, topics=("t",), fetch_max_wait_ms=fetch_max_wait_ms)


async def test_the_consumer_is_made_with_the_stage_fetch_wait() -> None:
    consumer = _runner(fetch_max_wait_ms=100)._kafka_consumer()
    assert consumer._fetch_max_wait_ms == 100


async def test_the_default_fetch_wait_is_the_client_default() -> None:
    consumer = _runner()._kafka_consumer()
    assert consumer._fetch_max_wait_ms == DEFAULT_FETCH_MAX_WAIT_MS == 500


def test_acts_delivery_declares_its_batch_cap_and_fetch_wait() -> None:
    stage = next(s for s in ACTS.stages if s.name == "acts-delivery")
    assert stage.max_batch_records == DELIVERY_BATCH_RECORDS
    assert stage.fetch_max_wait_ms == DELIVERY_FETCH_MAX_WAIT_MS
    concurrency = _runner()._concurrency
    assert concurrency >= DELIVERY_BATCH_RECORDS
    assert DELIVERY_FETCH_MAX_WAIT_MS < DEFAULT_FETCH_MAX_WAIT_MS
