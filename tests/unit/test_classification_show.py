"""`relais classification show` prints every code an integrator can pick: natures with their
labels and typologies, and the matières tree with labels (text and JSON)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import acts_cmd
from ops.classification import as_dict, as_lines
from relais.actes.classification import (
    Classification,
    NatureEntry,
    build_retour_classification,
    parse_retour_classification,
)
from relais.settings import Settings
from sandbox.tdt.classification import default_classification

SIREN = "210600235"


@pytest.fixture(scope="module")
def kept() -> Classification:
    """The sandbox's classification as the hub keeps it: through its 7-2 XML."""
    return parse_retour_classification(build_retour_classification(default_classification()))


def _label(classification: Classification, path: tuple[int, ...]) -> str:
    node = classification.matiere(path)
    assert node is not None
    return node.label


def test_text_lists_every_nature_typology_and_matiere_with_its_label(
    kept: Classification,
) -> None:
    text = "\n".join(as_lines(SIREN, kept))
    assert "2024-01-15" in text
    for nature in kept.natures:
        assert f"  {nature.code}  {nature.abbreviation:<3} {nature.label}" in text
        for typology in nature.typologies:
            assert f"{typology.code:<8} {typology.label}" in text
    paths = kept.matiere_paths()
    assert (7, 1, 1) in paths
    lines = as_lines(SIREN, kept)
    for path in paths:
        dotted = ".".join(str(c) for c in path)
        assert any(line.split(None, 1) == [dotted, _label(kept, path)] for line in lines), dotted


def test_typologies_are_listed_under_their_own_nature(kept: Classification) -> None:
    lines = as_lines(SIREN, kept)
    contract = lines.index("  4  CC  Contrats, conventions et avenants")
    assert lines[contract + 1].split()[0] == "99_CO"
    assert all("99_CO" not in line for line in lines[:contract])


def test_a_nature_without_typologies_says_they_are_not_checked() -> None:
    bare = Classification(date(2025, 1, 1), (NatureEntry(1, "DE", "Délibérations"),), ())
    lines = [line.strip() for line in as_lines(SIREN, bare)]
    assert "(no typology listed: typologies are not checked)" in lines


def test_json_has_the_whole_tree(kept: Classification) -> None:
    data = as_dict(kept)
    assert data["date_version"] == "2024-01-15"
    assert [n["code"] for n in data["natures"]] == [1, 2, 3, 4, 5, 6]
    assert {"code": "99_DE", "label": "Délibération"} in data["natures"][0]["typologies"]
    finances = next(m for m in data["matieres"] if m["code"] == 7)
    budget = next(m for m in finances["children"] if m["code"] == 1)
    assert budget["label"] == "Décisions budgétaires"
    assert [c["code"] for c in budget["children"]] == [1, 2]

    def paths(nodes: list[dict[str, object]], prefix: tuple[int, ...]) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for node in nodes:
            code = node["code"]
            assert isinstance(code, int)
            children = node["children"]
            assert isinstance(children, list)
            out += [(*prefix, code), *paths(children, (*prefix, code))]
        return out

    assert paths(data["matieres"], ()) == kept.matiere_paths()


def test_cli_show_prints_codes_not_a_count(
    monkeypatch: pytest.MonkeyPatch, kept: Classification,
) -> None:
    async def kept_for(settings: Settings, siren: str) -> Classification | None:
        return kept if siren == SIREN else None

    monkeypatch.setattr(acts_cmd, "load_settings", Settings.from_env)
    monkeypatch.setattr(acts_cmd, "kept_classification", kept_for)
    runner = CliRunner()

    shown = runner.invoke(acts_cmd.app, ["show", SIREN])
    assert shown.exit_code == 0, shown.output
    assert "Subventions aux associations" in shown.output
    assert "99_BF" in shown.output
    assert "matière codes" not in shown.output

    as_json = runner.invoke(acts_cmd.app, ["show", SIREN, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["member_siren"] == SIREN
    assert data["natures"][4]["label"] == "Documents budgétaires et financiers"

    missing = runner.invoke(acts_cmd.app, ["show", "200066389"])
    assert missing.exit_code == 1
    assert "relais classification refresh 200066389" in missing.output


def test_integration_guide_lists_the_sandbox_classification() -> None:
    """docs/integration.md lists every code of the sandbox's default classification."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "integration.md").read_text(
        encoding="utf-8")
    section = guide.split("## Classification codes", 1)[1].split("\n## ", 1)[0]
    sandbox = default_classification()
    assert sandbox.date_version.isoformat() in section
    for nature in sandbox.natures:
        assert f"| {nature.code} | {nature.abbreviation} | {nature.label} |" in section
        for typology in nature.typologies:
            assert f"`{typology.code}` {typology.label}" in section
    for path in sandbox.matiere_paths():
        assert f"`{'.'.join(str(c) for c in path)}` {_label(sandbox, path)}" in section, path
