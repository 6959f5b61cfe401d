"""Every structured log event is named ``<area>.<what_happened>`` in snake_case.

One style makes the logs searchable: ``acts.delivery_skipped``,
``stage.dead_lettered``, ``sandbox.fault_injected``. The area says which part of the
hub wrote the line; what varies (a partner, a stage, a member) goes in fields, never
in the event name. This test reads the source (an AST walk over every package) so
a new log call in another style fails the build.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "relais", "agents", "connectors", "ops", "sandbox", "topics", "schemas")
LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical",
                    "msg", "fatal"})
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
#: Modules that pass an event name through (checked where they are called).
PASS_THROUGH = frozenset({"relais/api/limits.py"})


def _is_logger(node: ast.expr) -> bool:
    """``log``, ``logger``, ``_log``, ``self._log``, ``structlog.get_logger(...)``."""
    if isinstance(node, ast.Name):
        return node.id in {"log", "logger", "_log", "_logger", "limited"}
    if isinstance(node, ast.Attribute):
        return node.attr in {"log", "_log", "logger", "_logger"}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "get_logger"
    return False


def log_calls(path: Path) -> list[tuple[int, ast.expr]]:
    """(line, first argument) of every log call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS and _is_logger(node.func.value) and node.args):
            calls.append((node.lineno, node.args[0]))
    return calls


def offending(path: Path) -> list[str]:
    found = []
    for line, arg in log_calls(path):
        where = f"{path.relative_to(REPO)}:{line}"
        passed_through = path.relative_to(REPO).as_posix() in PASS_THROUGH
        if passed_through and isinstance(arg, ast.Name | ast.JoinedStr):
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if not EVENT_NAME.fullmatch(arg.value):
                found.append(f"{where}: {arg.value!r}")
        else:
            found.append(f"{where}: the event name is computed ({ast.unparse(arg)})")
    return found


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def test_the_walk_finds_the_log_calls() -> None:
    calls = [call for path in sources() for call in log_calls(path)]
    assert len(calls) > 100


@pytest.mark.parametrize("text", ['log.info("Delivery skipped")', 'log.info("acts_skipped")',
                                  'log.info(f"sandbox.{name}_fault")'])
def test_a_name_in_another_style_is_reported(tmp_path: Path, text: str) -> None:
    bad = REPO / "relais" / "_log_style_probe.py"
    try:
        bad.write_text(f"{text}\n", encoding="utf-8")
        assert offending(bad)
    finally:
        bad.unlink()


def test_every_log_event_has_an_area_and_a_snake_case_name() -> None:
    problems = [problem for path in sources() for problem in offending(path)]
    assert problems == []
