"""`relais connector pause|resume` and `relais dlq list --stage` accept only what the flow
declarations name: an unknown partner or stage is refused with the known ones listed,
before anything is written to the cluster."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.cli import ops_cmd
from hub.cli.main import app
from hub.flows import FLOWS
from relais.flows.kit import partners_of


def test_an_unknown_partner_is_refused_with_the_declared_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_cluster() -> None:
        raise AssertionError("an unknown partner must be refused before any setting is read")

    monkeypatch.setattr(ops_cmd, "load_settings", no_cluster)
    for command in ("pause", "resume"):
        result = CliRunner().invoke(app, ["connector", command, "tdtx", "--reason", "test"])
        assert result.exit_code == 1
        assert "unknown partner 'tdtx'" in result.output
        assert "partners: tdt" in result.output


def test_the_declared_partner_is_known() -> None:
    assert "tdt" in partners_of(FLOWS)
    assert ops_cmd.known_partner("tdt") == "tdt"


def test_the_partner_must_be_named() -> None:
    result = CliRunner().invoke(app, ["connector", "pause", "--reason", "test"])
    assert result.exit_code != 0


def test_an_unknown_stage_is_refused_with_the_declared_ones() -> None:
    with pytest.raises(Exception) as raised:
        ops_cmd._filter(["acts-nope"], "", "", "", "")
    assert getattr(raised.value, "exit_code", None) == 1
    letters = ops_cmd._filter(["acts-followup"], "", "", "", "")
    assert letters.stages == ("acts-followup",)
    everything = ops_cmd._filter([], "", "", "", "")
    assert everything.stages[0] == "ingress" and "acts-prefecture" in everything.stages
