"""The flow kit: what a flow package declares so the hub can run it.

A partner family (the acts to the TdT, Hélios PES, the SEDA archive, …) is one
package under ``agents/<flow>/`` that exports one :class:`Flow`: its flow types
and their state machines, the schemas its members publish on their submissions
topic (:class:`Route`), its stages (:class:`Stage`: an input topic and a handler),
its timers (:class:`Timer`), its own topics, and ``build``, which makes the flow's
dependencies from what the hub shares (:class:`HubContext`).

The composition root (``hub/app.py``) loops over the declared flows
(``hub/flows.py``); the topic catalogue, the ingress routes, the failure routers,
``relais health``, the dead-letter tools and pause/resume all derive from the
declarations (:func:`stages_of`, :func:`routes_of`, …). No stage or partner name
is spelled outside its own package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from relais.flows.machine import FlowMachine
from relais.flows.outbound import Outbound
from relais.stages.records import InputRecord
from topics.spec import TopicSpec

#: A stage handler: one input record and the flow's dependencies → records to publish.
Handler = Callable[[InputRecord, Any], Awaitable[list[Outbound]]]
#: A stage's assignment hook: the flow's dependencies and the partitions it now holds.
OnAssigned = Callable[[Any, set[tuple[str, int]]], Awaitable[None]]


class Lifecycle(Protocol):
    """Something the hub starts before the stages run and stops after them."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Route:
    """A schema members may publish on their submissions topic, and where the ingress
    forwards an accepted one."""

    schema_name: str
    topic: TopicSpec
    flow_type: str


@dataclass(frozen=True)
class Stage:
    """A transactional stage: consumes ``input``, calls ``handler`` per record.

    Its consumer group is ``<app id>-<name>``, its dead-letter topic
    ``relais.dlq.<name>``; failures are reported as flows of ``flow_type``.
    Pausing ``partner`` (``relais connector pause``) holds the stage's input.
    ``max_batch_records`` caps the records of one batch (one transaction; default: the
    runner's), for a stage whose records may each wait on a partner, so a batch's
    outputs are not held back long; ``fetch_max_wait_ms`` how long the broker may hold
    the stage's fetch when nothing is new (default: the runner's). ``on_assigned`` is
    awaited with the flow's dependencies and the ``(topic, partition)`` pairs the stage
    holds whenever that changes: none when a rebalance begins, then all those it was
    assigned (e.g. to stop calling a partner for a partition it lost, and to take over
    the state the previous owner of a partition published).
    """

    name: str
    input: TopicSpec
    handler: Handler
    flow_type: str
    partner: str | None = None
    max_batch_records: int | None = None
    fetch_max_wait_ms: int | None = None
    on_assigned: OnAssigned | None = None


@dataclass(frozen=True)
class Timer:
    """A periodic job of the flow (on the leader worker only when ``on_leader``).

    ``run`` receives the flow's dependencies; it is skipped while ``partner`` is
    paused. A timer that gives up on something dead-letters it to
    ``relais.dlq.<name>`` (declared for it, so ``relais health`` watches it).
    """

    name: str
    every_seconds: Callable[[Any], float]
    run: Callable[[Any], Awaitable[None]]
    partner: str | None = None
    on_leader: bool = True


@dataclass
class HubContext:
    """What the hub shares with every flow's ``build``: the settings, the Avro codec,
    the member directory, the blob store, the journal publisher (acknowledged writes
    outside a stage transaction) and the connector pause controls.

    ``shared`` holds what several flows of one worker use and the worker must build once
    (e.g. the registry cache's view, read by the registry stages and acts-validation):
    the first flow whose ``build`` asks makes it and lists it in its views, the others
    take it from here (``agents.registry.views.shared_cache_view``)."""

    settings: Any
    codec: Any
    members: Any
    blobs: Any
    journal: Any
    controls: Any
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlowRuntime:
    """What ``build`` returns: the dependencies every handler and timer of the flow
    receives, the views to start before its stages, and what to close at the end."""

    deps: Any
    views: list[Lifecycle] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class Flow:
    """One partner family, as the hub runs it."""

    name: str
    partner: str | None
    machines: tuple[FlowMachine, ...]
    routes: tuple[Route, ...]
    stages: tuple[Stage, ...]
    topics: tuple[TopicSpec, ...]
    build: Callable[[HubContext], FlowRuntime]
    timers: tuple[Timer, ...] = ()

    def stage_names(self) -> tuple[str, ...]:
        """Every name with a dead-letter topic: the stages, then the timers."""
        return (*(s.name for s in self.stages), *(t.name for t in self.timers))


def stages_of(flows: Iterable[Flow]) -> tuple[Stage, ...]:
    return tuple(stage for flow in flows for stage in flow.stages)


def dead_letter_names(flows: Iterable[Flow]) -> tuple[str, ...]:
    """Every stage and timer name that owns a ``relais.dlq.<name>`` topic."""
    return tuple(name for flow in flows for name in flow.stage_names())


def routes_of(flows: Iterable[Flow]) -> dict[str, Route]:
    """The ingress routes by schema name; two flows claiming one schema is a bug."""
    routes: dict[str, Route] = {}
    for flow in flows:
        for route in flow.routes:
            if route.schema_name in routes:
                raise ValueError(f"schema {route.schema_name} is routed by two flows")
            routes[route.schema_name] = route
    return routes


def stage_partners(flows: Iterable[Flow]) -> dict[str, str]:
    """Stage or timer name → the partner whose pause holds it."""
    partners: dict[str, str] = {}
    for flow in flows:
        for stage in flow.stages:
            if stage.partner:
                partners[stage.name] = stage.partner
        for timer in flow.timers:
            if timer.partner:
                partners[timer.name] = timer.partner
    return partners


def partners_of(flows: Iterable[Flow]) -> tuple[str, ...]:
    """Every partner a declared flow calls, in declaration order, once each."""
    seen: dict[str, None] = {}
    for partner in stage_partners(flows).values():
        seen.setdefault(partner, None)
    return tuple(seen)


def machines_of(flows: Iterable[Flow]) -> dict[str, FlowMachine]:
    """The state machine of every declared flow type."""
    return {m.flow_type: m for flow in flows for m in flow.machines}


def flow_topics(flows: Iterable[Flow]) -> tuple[TopicSpec, ...]:
    """Every topic the flows declare, once each (by name)."""
    seen: dict[str, TopicSpec] = {}
    for flow in flows:
        for spec in flow.topics:
            seen.setdefault(spec.name, spec)
    return tuple(seen.values())


def stage_inputs(flows: Iterable[Flow]) -> dict[str, str]:
    """Stage name → its input topic name (the topics delayed records may go back to)."""
    return {stage.name: stage.input.name for stage in stages_of(flows)}


def find_flow(flows: Sequence[Flow], name: str) -> Flow:
    for flow in flows:
        if flow.name == name:
            return flow
    raise KeyError(name)


def check_declarations(flows: Sequence[Flow]) -> None:
    """Refuse declarations that contradict each other (raises ValueError): one name per
    stage and timer, one machine per flow type, every stage and route on a declared
    flow type, one flow per schema."""
    names = dead_letter_names(flows)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"stage or timer names used twice: {', '.join(duplicates)}")
    machines = machines_of(flows)
    if sum(len(flow.machines) for flow in flows) != len(machines):
        raise ValueError("a flow type is declared by two machines")
    routes = routes_of(flows)
    typed: Mapping[str, str] = {
        **{f"stage {s.name}": s.flow_type for s in stages_of(flows)},
        **{f"route {r.schema_name}": r.flow_type for r in routes.values()},
    }
    unknown = [f"{what} ({flow_type})" for what, flow_type in typed.items()
               if flow_type not in machines]
    if unknown:
        raise ValueError(f"undeclared flow types: {', '.join(unknown)}")
