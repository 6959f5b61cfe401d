"""The README's configuration table, generated from the settings `relais config` prints.

``relais config --markdown`` prints it; ``tests/unit/test_readme_config.py`` fails
when the README's table and ``relais/settings.py`` drift apart.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from relais.settings import SECRET_MARK, Settings

HEADER = ("| variable | default | meaning |", "|---|---|---|")
_ROOT = str(Path(__file__).resolve().parent.parent)


def _secret_variables() -> set[str]:
    return {f"RELAIS_{f.name.upper()}" for f in fields(Settings) if f.metadata.get(SECRET_MARK)}


def _default_cell(default: str, secret: bool) -> str:
    if not default:
        return "*(empty; secret)*" if secret else "*(empty)*"
    if secret:
        return "*(set; secret)*"
    shown = default.replace(_ROOT, "<repository>") if default.startswith(_ROOT) else default
    return f"`{shown}`"


_PLACEHOLDER = re.compile(r"<\w+>(?:[\w/-]|\.(?=\w))*")


def _cell(text: str) -> str:
    """Help text as a table cell: pipes escaped, ``<data_dir>/…`` in code (Markdown would
    take it for an HTML tag and hide it)."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # outside backticks
        parts[i] = _PLACEHOLDER.sub(lambda m: f"`{m.group(0)}`", parts[i])
    return "`".join(parts)


def table_rows() -> list[str]:
    """One Markdown row per setting, in the order `relais config` prints them, with the
    defaults (not this process's values)."""
    secrets = _secret_variables()
    rows = []
    for env, _value, default, help_text in Settings.from_env(environ={}).describe():
        rows.append(f"| `{env}` | {_default_cell(default, env in secrets)} | {_cell(help_text)} |")
    return rows


def markdown_table() -> str:
    return "\n".join([*HEADER, *table_rows()])
