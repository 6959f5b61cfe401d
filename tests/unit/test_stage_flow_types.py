"""Each stage's failure router reports the flow type of the records it handles: a
dead-lettered follow-up is an ``acte-followup``, not an acte."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.app import build_dependencies
from relais.settings import Settings


@pytest.mark.parametrize(
    "stage, flow_type",
    [("acts-validation", "acte"), ("acts-delivery", "acte"), ("acts-status", "acte"),
     ("acts-followup", "acte-followup")],
)
def test_failure_router_names_the_stage_flow_type(
    tmp_path: Path, stage: str, flow_type: str
) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1",
                                 kafka_auth="off")
    deps = build_dependencies(settings)
    router = deps.stage_runners[stage]._router
    assert router is not None
    assert router.flow_type == flow_type
