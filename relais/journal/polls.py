"""The one status-poll scheduler: a status check waits in a poll tier, then goes to the
stage that asks the partner."""

from __future__ import annotations

from typing import Any

from relais.flows.outbound import Outbound
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders


def schedule_poll(
    codec: AvroCodec, *, schema_name: str, check: dict[str, Any], flow_id: str,
    member_siren: str, status_topic: str, wait: str, stage: str,
    parent: EventHeaders | None,
) -> Outbound:
    """A new status check (``check``, Avro ``schema_name``) on the delay tier ``wait``
    (e.g. the schedule's first, ``"5s"``), forwarded to ``status_topic`` when due."""
    headers = h.replace(
        EventHeaders.new(source=f"/relais/hub/{stage}",
                         type=codec.catalog.current(schema_name).full_name,
                         subject=flow_id, flow_id=flow_id, parent=parent).to_kafka(),
        **{h.MEMBER: member_siren, h.DELAY_TARGET: status_topic},
    )
    return Outbound(tier(wait).topic.name, flow_id.encode("utf-8"),
                    codec.encode(schema_name, check), headers)


def next_poll(
    codec: AvroCodec, *, schema_name: str, check: dict[str, Any], flow_id: str,
    status_topic: str, wait: str, headers: list[tuple[str, bytes]],
) -> Outbound:
    """The same check polled again after ``wait``, keeping the record's headers
    (its trace and member) and dropping its retry attempt."""
    return Outbound(tier(wait).topic.name, flow_id.encode("utf-8"),
                    codec.encode(schema_name, check),
                    h.replace(headers, **{h.DELAY_TARGET: status_topic, h.ATTEMPT: None}))
