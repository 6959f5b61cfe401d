"""Each stage's failure router reports the flow type its declaration names: a
dead-lettered follow-up is an ``acte-followup``, not an acte."""

from __future__ import annotations

import pytest

from hub.app import HubDependencies, build_dependencies
from hub.flows import FLOWS
from relais.errors import PartnerPermanentError
from relais.flows.ids import flow_id_for
from relais.flows.kit import stages_of
from relais.settings import Settings
from relais.stages import headers as h
from relais.stages.records import FakeRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from topics.acts import ACTS_FOLLOWUPS
from topics.catalogue import FLOW_EVENTS, dlq

SIREN = "212102313"


@pytest.fixture(scope="module")
def deps(tmp_path_factory: pytest.TempPathFactory) -> HubDependencies:
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("hub"),
                                 kafka_bootstrap="127.0.0.1:1", kafka_auth="off")
    return build_dependencies(settings)


@pytest.mark.parametrize(
    "stage, flow_type",
    [("acts-validation", "acte"), ("acts-delivery", "acte"), ("acts-status", "acte"),
     ("acts-followup", "acte-followup")],
)
def test_failure_router_names_the_stage_flow_type(
    deps: HubDependencies, stage: str, flow_type: str
) -> None:
    router = deps.stage_runners[stage]._router
    assert router is not None
    assert router.flow_type == flow_type
    assert router.dlq_topic == dlq(stage).name


def test_a_dead_lettered_followup_is_reported_as_an_acte_followup(
    deps: HubDependencies,
) -> None:
    router = deps.stage_runners["acts-followup"]._router
    assert router is not None
    flow = flow_id_for(SIREN, "ANNUL-1")
    record = FakeRecord(
        topic=ACTS_FOLLOWUPS.name, value=b"\x01", key=SIREN.encode(), partition=0, offset=3,
        headers=((FLOW_ID_HEADER, flow.encode()), (h.MEMBER, SIREN.encode())),
    )
    outputs = router.route(record, PartnerPermanentError("refused", partner="tdt", status=403))
    codec = AvroCodec()
    assert outputs[0].topic == "relais.dlq.acts-followup"
    events = [codec.decode(o.value or b"", expected="FlowState").record
              for o in outputs if o.topic == FLOW_EVENTS.name]
    assert [(e["flow_type"], e["state"]) for e in events] == [("acte-followup", "failed")]
    notes = [codec.decode(o.value or b"", expected="Notification").record
             for o in outputs if o.topic.endswith(".notifications")]
    assert notes and all(n.get("flow_type", "acte-followup") == "acte-followup" for n in notes)


def test_the_hub_has_one_runner_per_declared_stage_plus_the_ingress(
    deps: HubDependencies,
) -> None:
    assert {"ingress", "acts-validation", "acts-delivery", "acts-status",
            "acts-followup"} <= set(deps.stage_runners)
    assert set(deps.stage_runners) == {"ingress", *(s.name for s in stages_of(FLOWS))}
    assert [running.flow.name for running in deps.flows] == [flow.name for flow in FLOWS]


def test_stages_and_timers_of_a_paused_partner_hold(
    deps: HubDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def paused(partner: str) -> bool:
        asked.append(partner)
        return partner == "tdt"

    monkeypatch.setattr(deps.controls, "paused", paused)
    runner = deps.stage_runners["acts-delivery"]
    assert runner._paused is not None and runner._paused()
    assert asked == ["tdt"]
    assert deps.stage_runners["ingress"]._paused is None  # the ingress calls no partner
