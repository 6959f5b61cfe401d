"""A compacted view reads every partition of its topic when it starts (regression: it once
read partition 0 only, hiding two thirds of the acte links after a worker restart)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.admin import NewTopic

from relais.kafka.admin import admin_client
from relais.kafka.compacted_view import CompactedView
from relais.kafka.publisher import Publisher
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders

pytestmark = pytest.mark.integration


async def test_view_loads_every_partition_at_start(kafka_bootstrap: str) -> None:
    topic = f"test.view.{uuid.uuid4().hex[:8]}"
    async with admin_client(kafka_bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, 3, 1, topic_configs={
            "cleanup.policy": "compact"})])
    codec = AvroCodec()
    publisher = Publisher(kafka_bootstrap, codec, client_id="tests")
    await publisher.start()
    try:
        for n in range(30):
            record = {"partner": f"p{n}", "paused": n % 2 == 0, "reason": "test",
                      "operator": "tests", "at": datetime.now(UTC)}
            await publisher.publish(topic, key=f"p{n}", schema_name="ConnectorControl",
                                    record=record,
                                    headers=EventHeaders.new(source="/tests", type="t",
                                                             subject=None, flow_id=None))
    finally:
        await publisher.stop()
    view: CompactedView[dict[str, object]] = CompactedView(
        kafka_bootstrap, codec, topic=topic, schema_name="ConnectorControl",
        parse=lambda record: record,
    )
    await view.start()
    try:
        assert len(view) == 30
        assert view.get("p29") is not None and view.get("p0") is not None
    finally:
        await view.stop()
