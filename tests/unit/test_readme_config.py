"""The README's configuration table lists exactly the settings `relais config` prints.

When this fails after a change to ``relais/settings.py``: replace the table under
``## Configuration`` in README.md with the output of ``relais config --markdown``.
"""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from hub.cli.main import app
from ops.config_table import HEADER, markdown_table, table_rows
from relais.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
FIX = "regenerate it with `relais config --markdown`"


def _readme_table() -> list[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.S | re.M)
    assert match is not None, "README.md has no '## Configuration' section"
    return [line for line in match.group(1).splitlines() if line.startswith("|")]


def _variable(row: str) -> str:
    return row.split("|")[1].strip().strip("`")


def test_readme_lists_exactly_the_variables_relais_config_prints() -> None:
    printed = CliRunner().invoke(app, ["config"])
    assert printed.exit_code == 0, printed.output
    config_vars = re.findall(r"^(RELAIS_[A-Z0-9_]+)=", printed.output, re.M)
    readme_vars = [_variable(row) for row in _readme_table()[len(HEADER):]]
    missing = [v for v in config_vars if v not in readme_vars]
    extra = [v for v in readme_vars if v not in config_vars]
    assert not missing and not extra, (
        f"README configuration table drifted from `relais config`: missing {missing}, "
        f"not a setting {extra}; {FIX}"
    )
    assert readme_vars == config_vars, f"same variables, another order; {FIX}"


def test_readme_table_is_the_generated_one() -> None:
    readme = _readme_table()
    generated = markdown_table().splitlines()
    differing = [(r, g) for r, g in zip(readme, generated, strict=False) if r != g]
    assert not differing and len(readme) == len(generated), (
        f"README configuration table differs from the settings' defaults and help; {FIX}. "
        f"First difference: {differing[:1]}"
    )


def test_generated_table_follows_every_settings_field() -> None:
    """Dynamic, not a frozen list: one row per field, the help text in it."""
    rows = table_rows()
    described = Settings.from_env(environ={}).describe()
    assert len(rows) == len(described)
    for row, (env, _value, _default, help_text) in zip(rows, described, strict=True):
        assert row.startswith(f"| `{env}` |")
        plain = row.replace("`", "").replace("\\|", "|")
        assert help_text.replace("`", "") in plain


def test_defaults_are_shown_without_machine_paths_or_secret_values() -> None:
    table = markdown_table()
    assert str(README.parent) not in table
    assert "`<repository>/.relais`" in table
    assert "*(empty; secret)*" in table
