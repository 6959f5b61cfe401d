"""Flow-state agent: keeps the latest state of every flow in the compacted state topic.

Every stage appends transitions to ``relais.flows.events`` keyed by flow id, so
the transitions of one flow arrive in order on one partition; this agent copies
each one to ``relais.flows.state`` under the same key, where compaction keeps the
latest. Child events (prefecture messages) stay in the events topic only.
``relais flows show|list`` read these topics.
"""

from __future__ import annotations

from typing import Any

import faust
import structlog

from relais.errors import DecodeError
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, header_value
from topics.catalogue import FLOW_EVENTS, FLOW_STATE

log = structlog.get_logger(__name__)


def register(app: faust.App, codec: AvroCodec) -> Any:
    """Attach the flow-state agent to ``app``."""
    events_topic = app.topic(FLOW_EVENTS.name, key_serializer="raw", value_serializer="raw")
    state_topic = app.topic(FLOW_STATE.name, key_serializer="raw", value_serializer="raw")

    @app.agent(events_topic, name="flow-state")
    async def flow_state(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            headers = list(message.headers or [])
            with structlog.contextvars.bound_contextvars(
                flow_id=header_value(headers, FLOW_ID_HEADER),
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            ):
                try:
                    state = codec.decode(event.value, expected="FlowState").record
                except DecodeError as exc:
                    log.error("flow_state.unreadable_event", error=str(exc))
                    continue
                if "child_event" in state["details"]:
                    continue  # a prefecture message leaves the flow's state as it is
                await state_topic.send(key=event.key, value=event.value, headers=headers)

    return flow_state
