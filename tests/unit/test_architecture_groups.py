"""docs/architecture.md lists the consumer group of every declared stage, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from hub.flows import FLOWS
from relais.flows.kit import stages_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
ROW = re.compile(r"^\| `relais-hub-([a-z-]+)` \| `([a-z.]+)` \| ([a-z]+) \|$", re.MULTILINE)


def test_the_consumer_groups_table_matches_the_declared_stages() -> None:
    documented = {(stage, topic, flow) for stage, topic, flow in ROW.findall(DOC.read_text())}
    declared = {(stage.name, stage.input.name, flow.name)
                for flow in FLOWS for stage in flow.stages}
    assert documented == declared
    assert len(declared) == len(stages_of(FLOWS))
