"""Everything the hub runs derives from the flow declarations (``hub/flows.py``): a new
flow adds its topics, dead-letter topics, stages, routes, health inputs and pausable
partner by declaring them, without touching a shared file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.app import build_dependencies
from hub.flows import FLOWS
from ops.dlq import hub_stages
from ops.health import stage_inputs as health_inputs
from relais.flows.kit import (
    Flow,
    FlowRuntime,
    HubContext,
    Route,
    Stage,
    Timer,
    check_declarations,
    partners_of,
    routes_of,
    stage_inputs,
)
from relais.flows.machine import FlowMachine
from relais.flows.outbound import Outbound
from relais.settings import Settings
from relais.stages.records import InputRecord
from topics.catalogue import KERNEL_TOPICS, hub_topics
from topics.spec import TopicSpec

FAKE_IN = TopicSpec(name="test.fake.submitted", partitions=3, key="SIREN", value_schema="raw",
                   doc="test flow input")


async def _handle(record: InputRecord, deps: Any) -> list[Outbound]:
    return []


async def _tick(deps: Any) -> None:
    return None


BUILT: list[HubContext] = []


def _build(ctx: HubContext) -> FlowRuntime:
    BUILT.append(ctx)
    return FlowRuntime(deps={"members": ctx.members})


FAKE = Flow(
    name="fake-family", partner="fake-partner",
    machines=(FlowMachine("fake-family", {"received": 1, "sent": 2}, frozenset({"sent"})),),
    routes=(Route("FakeSubmission", FAKE_IN, "fake-family"),),
    stages=(Stage("fake-delivery", FAKE_IN, _handle, "fake-family", "fake-partner"),),
    topics=(FAKE_IN,),
    build=_build,
    timers=(Timer("fake-acquits", lambda settings: 30.0, _tick, "fake-partner"),),
)


def test_the_declared_flows_agree() -> None:
    check_declarations(FLOWS)
    check_declarations((*FLOWS, FAKE))


def test_a_contradiction_is_refused() -> None:
    clash = replace(FAKE, stages=(replace(FAKE.stages[0], name="acts-delivery"),))
    with pytest.raises(ValueError, match="acts-delivery"):
        check_declarations((*FLOWS, clash))
    untyped = replace(FAKE, routes=(Route("FakeSubmission", FAKE_IN, "fake-nope"),))
    with pytest.raises(ValueError, match="fake-nope"):
        check_declarations((*FLOWS, untyped))


def test_the_catalogue_is_the_kernel_plus_the_declarations() -> None:
    names = [spec.name for spec in hub_topics("hub", (*FLOWS, FAKE))]
    assert len(names) == len(set(names))
    assert {spec.name for spec in KERNEL_TOPICS} <= set(names)
    assert "relais.acts.submitted" in names and "relais.dlq.acts-prefecture" in names
    assert {"test.fake.submitted", "relais.dlq.fake-delivery", "relais.dlq.fake-acquits"} <= set(
        names)
    without = {spec.name for spec in hub_topics("hub", FLOWS)}
    assert set(names) - without == {"test.fake.submitted", "relais.dlq.fake-delivery",
                                     "relais.dlq.fake-acquits"}
    assert not any(name.startswith("relais.acts") for name in
                   (spec.name for spec in hub_topics("hub", ())))


def test_health_dead_letters_routes_partners_and_delay_targets_follow() -> None:
    flows = (*FLOWS, FAKE)
    assert hub_stages(flows)[-2:] == ("fake-delivery", "fake-acquits")
    assert hub_stages(flows)[0] == "ingress"
    inputs = health_inputs([], flows)
    assert inputs["fake-delivery"] == (["test.fake.submitted"], 0.0)
    assert inputs["fake-acquits"] == ([], 0.0)
    assert routes_of(flows)["FakeSubmission"].topic is FAKE_IN
    assert routes_of(flows)["ActeFollowUp"].flow_type == "acte-followup"
    assert partners_of(flows) == (*partners_of(FLOWS), "fake-partner")
    assert stage_inputs(flows)["fake-delivery"] == "test.fake.submitted"


def test_the_hub_builds_a_declared_flow(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1",
                                 kafka_auth="off")
    BUILT.clear()
    deps = build_dependencies(settings, (*FLOWS, FAKE))
    assert len(BUILT) == 1 and BUILT[0].members is deps.members
    runner = deps.stage_runners["fake-delivery"]
    assert runner._router is not None
    assert runner._router.flow_type == "fake-family"
    assert runner._router.dlq_topic == "relais.dlq.fake-delivery"
    assert runner.group_id == f"{settings.app_id}-fake-delivery"
    forwarder = deps.runners[0]
    assert "test.fake.submitted" in forwarder._targets  # type: ignore[attr-defined]
    assert "relais.acts.status" in forwarder._targets  # type: ignore[attr-defined]
