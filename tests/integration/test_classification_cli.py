"""`relais classification refresh` then `show` on the real broker, against the sandbox TdT over
mTLS: the refresh goes through the acts stages' own code and keeps the snapshot; show prints
the codes of the classification the TdT sent."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.cli import acts_cmd
from ops.stack import (
    Stack,
    sandbox_base_port,
    sandbox_config,
    sandbox_control_client,
    sandbox_member,
    sandbox_url,
)
from relais.identifiers import luhn_check_digit
from relais.settings import Settings
from sandbox.tdt.classification import default_classification
from tests.integration.conftest import apply_hub_topics, register

pytestmark = pytest.mark.integration

BODY = "21000077"
SIREN = BODY + str(luhn_check_digit(BODY))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def sandbox_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("classification")
    settings = Settings.from_env(kafka_bootstrap=kafka_bootstrap, data_dir=data_dir,
                                 app_id=f"relais-classif-{uuid.uuid4().hex[:8]}",
                                 sandbox_tdt_port=sandbox_base_port())
    registration = sandbox_member(settings, SIREN, "Commune de test", "021")
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, [registration]))
    stack = Stack(settings, data_dir / "logs")
    try:
        stack.start_sandbox(sandbox_config([registration]))
        yield stack
    finally:
        stack.stop()


async def _stats(settings: Settings) -> dict[str, Any]:
    async with sandbox_control_client(settings) as client:
        stats: dict[str, Any] = (await client.get(f"{sandbox_url(settings)}/sandbox/stats")).json()
    return stats


def test_refresh_keeps_the_tdt_classification_and_show_prints_its_codes(
    sandbox_stack: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = sandbox_stack.settings
    for name, value in sandbox_stack.env().items():  # the TdT password and key password
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(acts_cmd, "load_settings", lambda: settings)
    runner = CliRunner()

    missing = runner.invoke(acts_cmd.app, ["show", SIREN])
    assert missing.exit_code == 1
    assert f"relais classification refresh {SIREN}" in missing.output

    before = asyncio.run(_stats(settings))["classification_fetches"]
    refreshed = runner.invoke(acts_cmd.app, ["refresh", SIREN])
    assert refreshed.exit_code == 0, refreshed.output
    assert f"classification of 2024-01-15 kept for {SIREN}" in refreshed.output
    assert asyncio.run(_stats(settings))["classification_fetches"] == before + 1

    shown = runner.invoke(acts_cmd.app, ["show", SIREN])
    assert shown.exit_code == 0, shown.output
    sandbox = default_classification()
    for nature in sandbox.natures:
        assert f"{nature.abbreviation:<3} {nature.label}" in shown.output
    assert "7.1.1" in shown.output and "Budget primitif" in shown.output

    printed = runner.invoke(acts_cmd.app, ["show", SIREN, "--json"]).output
    # structlog's test default prints log lines to stdout; `relais` logs to stderr
    as_json = json.loads(printed[printed.index("{\n"):])
    assert as_json["member_siren"] == SIREN
    assert [n["code"] for n in as_json["natures"]] == [n.code for n in sandbox.natures]
    assert [m["code"] for m in as_json["matieres"]] == [m.code for m in sandbox.matieres]

    unknown = runner.invoke(acts_cmd.app, ["refresh", "200066389"])
    assert unknown.exit_code == 1
    assert "no member 200066389" in unknown.output
