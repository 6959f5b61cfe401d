"""TdT calls summarised at INFO at most once per interval (tdt.calls_summary)."""

from __future__ import annotations

import structlog.testing

from connectors.tdt.tally import CallTally


def test_calls_are_summarised_once_per_interval() -> None:
    now = [100.0]
    tally = CallTally(interval=1.0, clock=lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        tally.add("tdt", "post_acte", 200, 4.0)
        tally.add("tdt", "get_status", 200, 2.0)
        now[0] += 0.5
        tally.add("tdt", "get_status", 503, 12.0)
        assert logs == []
        now[0] += 0.6
        tally.add("tdt", "post_acte", 200, 6.0)
        now[0] += 0.2
        tally.add("tdt", "get_status", 200, 1.0)
        tally.flush("tdt")
        tally.flush("tdt")  # nothing since: no line
    assert [entry["event"] for entry in logs] == ["tdt.calls_summary"] * 2
    first, second = logs
    assert first["log_level"] == "info"
    assert first["calls"] == 4
    assert first["by_operation"] == {"post_acte": 2, "get_status": 2}
    assert first["http_errors"] == 1
    assert first["elapsed_ms_mean"] == 6.0 and first["elapsed_ms_max"] == 12.0
    assert first["seconds"] == 1.1
    assert second["calls"] == 1 and second["calls_since_start"] == 5
