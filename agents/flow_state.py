"""Flow-state agent: keeps the latest state of every flow in the compacted state topic.

Every stage appends transitions to ``relais.flows.events`` keyed by flow id, so
the transitions of one flow arrive in order on one partition; this agent copies
each one to ``relais.flows.state`` under the same key, where compaction keeps the
latest, unless it would move the flow back (:mod:`relais.flows.progress`, judged
by the machine of the event's ``flow_type``, from the mapping the hub passes:
``machines_of(FLOWS)``; a resent submission of an acknowledged acte stays
acknowledged). Child events
(prefecture messages) stay in the events topic only. ``relais flows show|list``
read these topics.

To judge a move the agent keeps each flow's current state in memory (one short
string per flow), read from ``relais.flows.state`` before its first event and
followed afterwards, so a restarted or rebalanced worker judges from where its
predecessor left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from typing import Any

import faust
import structlog

from relais.errors import DecodeError
from relais.flows.machine import FlowMachine
from relais.flows.progress import is_child_event, machine_for, moves_forward
from relais.kafka.compacted_view import CompactedView
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, header_value
from topics.catalogue import FLOW_EVENTS, FLOW_STATE

log = structlog.get_logger(__name__)


class FlowStates:
    """The fold: each flow's current state, and whether an event may change it."""

    def __init__(
        self, machines: Mapping[str, FlowMachine], view: CompactedView[str] | None = None
    ) -> None:
        self._machines = machines
        self._view = view
        self._local: dict[str, str] = {}

    def current(self, flow_id: str) -> str | None:
        if self._view is not None:
            return self._view.get(flow_id)
        return self._local.get(flow_id)

    def apply(self, flow_id: str, event: dict[str, Any]) -> bool:
        """True when ``event`` changes the flow's state (and it is recorded as the current
        one); False for a child event or a move back (judged by the machine of the
        event's ``flow_type``)."""
        if is_child_event(event):
            return False
        current = self.current(flow_id)
        machine = machine_for(self._machines, event.get("flow_type"))
        if not moves_forward(current, event["state"], machine):
            log.info("flow_state.backwards_move_ignored", current=current,
                     refused=event["state"], stage=event.get("stage"))
            return False
        state = sys.intern(event["state"])
        if self._view is not None:
            self._view.put_local(flow_id, state)
        else:
            self._local[flow_id] = state
        return True


def state_view(bootstrap_servers: str, codec: AvroCodec) -> CompactedView[str]:
    """``relais.flows.state`` as flow id → state name."""
    return CompactedView(bootstrap_servers, codec, topic=FLOW_STATE.name, schema_name="FlowState",
                         parse=lambda record: sys.intern(str(record["state"])))


def register(
    app: faust.App,
    codec: AvroCodec,
    bootstrap_servers: str | None = None,
    *,
    machines: Mapping[str, FlowMachine],
) -> Any:
    """Attach the flow-state agent to ``app``; ``machines`` (flow type → machine,
    ``machines_of(FLOWS)``) judge each event's move.

    With ``bootstrap_servers`` the agent reads ``relais.flows.state`` before its first
    event (the states a previous worker folded); without, it judges from the events it
    sees since start only.
    """
    events_topic = app.topic(FLOW_EVENTS.name, key_serializer="raw", value_serializer="raw")
    state_topic = app.topic(FLOW_STATE.name, key_serializer="raw", value_serializer="raw")
    view = state_view(bootstrap_servers, codec) if bootstrap_servers else None
    states = FlowStates(machines, view)

    @app.agent(events_topic, name="flow-state")
    async def flow_state(stream: Any) -> None:
        while view is not None and not view.ready.is_set():
            try:
                await view.start(timeout=600.0)
            except Exception as exc:  # broker away at start: try again, fold nothing blind
                log.error("flow_state.view_start_failed", error=str(exc) or type(exc).__name__)
                with contextlib.suppress(Exception):
                    await view.stop()
                await asyncio.sleep(5.0)
        try:
            async for event in stream.events():
                await _fold(event, codec, states, state_topic)
        finally:
            if view is not None:
                await view.stop()

    return flow_state


async def _fold(event: Any, codec: AvroCodec, states: FlowStates, state_topic: Any) -> None:
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
            return
        if states.apply(str(state["flow_id"]), state):
            await state_topic.send(key=event.key, value=event.value, headers=headers)
