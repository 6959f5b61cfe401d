"""`relais connector pause|resume` publishes the partner's control record and its audit entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from ops import connectors
from relais.settings import Settings
from topics.catalogue import OPS_AUDIT, OPS_CONTROLS


class RecordingPublisher:
    published: ClassVar[list[dict[str, Any]]] = []
    stopped = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).published = []

    async def start(self) -> None: ...

    async def publish(self, topic: str, **fields: Any) -> None:
        type(self).published.append({"topic": topic, **fields})

    async def stop(self) -> None:
        type(self).stopped = True


@pytest.mark.parametrize("paused", [True, False])
async def test_a_pause_is_a_control_record_and_an_audit_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, paused: bool
) -> None:
    monkeypatch.setattr(connectors, "Publisher", RecordingPublisher)
    settings = Settings(data_dir=tmp_path)
    await connectors.set_connector_paused(settings, "tdt", paused=paused, reason="maintenance",
                                          operator="alice")
    control, audit = RecordingPublisher.published
    assert control["topic"] == OPS_CONTROLS.name and control["key"] == "tdt"
    assert control["record"]["paused"] is paused
    assert control["record"]["operator"] == "alice"
    assert audit["topic"] == OPS_AUDIT.name and audit["key"] == "connector:tdt"
    assert audit["record"]["action"] == ("connector-pause" if paused else "connector-resume")
    assert RecordingPublisher.stopped
