"""The one poll scheduler: first poll and next poll."""

from __future__ import annotations

from datetime import UTC, datetime

from relais.journal.polls import next_poll, schedule_poll
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders

CHECK = {"flow_id": "f1", "member_siren": "217500016", "submission_id": "s1",
         "id_acte": "A-1", "transaction_id": "4242", "polls": 0, "last_status": 1,
         "posted_at": datetime(2026, 3, 2, tzinfo=UTC)}


def test_the_first_poll_waits_in_the_tier_and_targets_the_status_topic() -> None:
    codec = AvroCodec()
    parent = EventHeaders.new(source="/t", type="t", subject="f1", flow_id="f1")
    out = schedule_poll(codec, schema_name="ActeStatusCheck", check=CHECK, flow_id="f1",
                        member_siren="217500016", status_topic="relais.acts.status",
                        wait="30s", stage="acts-delivery", parent=parent)
    assert (out.topic, out.key) == (tier("30s").topic.name, b"f1")
    assert h.get(out.headers, h.DELAY_TARGET) == "relais.acts.status"
    assert h.get(out.headers, h.MEMBER) == "217500016"
    assert h.get(out.headers, FLOW_ID_HEADER) == "f1"
    assert codec.decode(out.value or b"").record["transaction_id"] == "4242"


def test_the_next_poll_keeps_the_headers_and_drops_the_attempt() -> None:
    codec = AvroCodec()
    headers = [(h.MEMBER, b"217500016"), (h.ATTEMPT, b"3"), ("traceparent", b"00-a-b-01")]
    out = next_poll(codec, schema_name="ActeStatusCheck", check={**CHECK, "polls": 2},
                    flow_id="f1", status_topic="relais.acts.status", wait="2m",
                    headers=headers)
    assert out.topic == tier("2m").topic.name
    assert h.get(out.headers, h.ATTEMPT) is None
    assert h.get(out.headers, "traceparent") == "00-a-b-01"
    assert h.get(out.headers, h.DELAY_TARGET) == "relais.acts.status"
