"""The message contract: Avro schemas (``*.avsc``) and their recorded history.

Each ``<Name>.avsc`` in this folder is the current version of a record. Every
version ever released is kept in ``history/<Name>.v<N>.avsc``; records written
with any recorded version stay readable (the codec resolves the writer's version
into the current one), and ``tests/unit/test_schema_evolution.py`` fails when
a change is not backward compatible or not recorded in ``history/``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent
HISTORY_DIR = SCHEMA_DIR / "history"
_VERSION_FILE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)\.v(?P<version>\d+)\.avsc$")


def schema_names() -> list[str]:
    """Names of the current schemas, e.g. ``["ActeSubmission", "Member", ...]``."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc"))


@cache
def load_schema_json(name: str) -> dict[str, Any]:
    """The current version of schema ``name`` as JSON (not yet parsed by fastavro)."""
    data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
    return data


def history(name: str) -> list[tuple[int, dict[str, Any]]]:
    """Every recorded version of ``name`` as ``(version, schema JSON)``, oldest first."""
    versions = []
    for path in HISTORY_DIR.glob(f"{name}.v*.avsc"):
        match = _VERSION_FILE.match(path.name)
        if match and match["name"] == name:
            versions.append((int(match["version"]), json.loads(path.read_text(encoding="utf-8"))))
    return sorted(versions, key=lambda item: item[0])
