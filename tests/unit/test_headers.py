"""CloudEvents Kafka headers and W3C trace context."""

from __future__ import annotations

import re

import pytest

from relais.wire.headers import (
    AVRO_CONTENT_TYPE,
    FLOW_ID_HEADER,
    EventHeaders,
    child_traceparent,
    header_value,
    new_traceparent,
)

TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-01$")


def _headers() -> EventHeaders:
    return EventHeaders.new(
        source="/relais/hub/ingress",
        type="fr.relais.notifications.Notification",
        subject="217500016-flow",
        flow_id="217500016-flow",
        dataschema="urn:relais:schema:fr.relais.notifications.Notification:v1",
        event_id="evt-1",
        extra={"relais_attempt": "2", "x-member-ref": "DELIB 117 é"},
    )


def test_to_kafka_from_kafka_round_trip_with_extra_headers() -> None:
    headers = _headers()
    raw = headers.to_kafka()
    assert all(isinstance(name, str) and isinstance(value, bytes) for name, value in raw)
    assert EventHeaders.from_kafka(raw) == headers


def test_to_kafka_names_and_values() -> None:
    raw = dict(_headers().to_kafka())
    assert raw["ce_specversion"] == b"1.0"
    assert raw["ce_id"] == b"evt-1"
    assert raw["ce_source"] == b"/relais/hub/ingress"
    assert raw["ce_type"] == b"fr.relais.notifications.Notification"
    assert raw["ce_subject"] == b"217500016-flow"
    assert raw["content-type"] == AVRO_CONTENT_TYPE.encode()
    assert raw[FLOW_ID_HEADER] == b"217500016-flow"
    assert raw["x-member-ref"] == "DELIB 117 é".encode()
    assert re.match(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", raw["ce_time"])


def test_specversion_is_present_once_and_not_an_extra() -> None:
    raw = EventHeaders().to_kafka()
    assert [name for name, _ in raw].count("ce_specversion") == 1
    assert "ce_specversion" not in EventHeaders.from_kafka(raw).extra


def test_absent_headers_are_left_out_and_read_as_none() -> None:
    raw = EventHeaders(content_type=None).to_kafka()
    assert raw == [("ce_specversion", b"1.0")]
    read = EventHeaders.from_kafka([])
    assert read.id is None and read.flow_id is None and read.content_type is None
    assert EventHeaders.from_kafka(None).extra == {}


def test_new_ids_are_unique_when_not_given() -> None:
    first = EventHeaders.new(source="s", type="t", subject=None, flow_id=None)
    second = EventHeaders.new(source="s", type="t", subject=None, flow_id=None)
    assert first.id and second.id and first.id != second.id


def test_traceparent_format() -> None:
    for _ in range(20):
        assert TRACEPARENT.match(new_traceparent())
    headers = _headers()
    assert headers.traceparent is not None and TRACEPARENT.match(headers.traceparent)


def test_child_keeps_trace_and_changes_span() -> None:
    parent = new_traceparent()
    child = child_traceparent(parent)
    parent_match, child_match = TRACEPARENT.match(parent), TRACEPARENT.match(child)
    assert parent_match and child_match
    assert child_match["trace"] == parent_match["trace"]
    assert child_match["span"] != parent_match["span"]


def test_new_headers_continue_the_parent_trace() -> None:
    parent = _headers()
    child = EventHeaders.new(source="s", type="t", subject=None, flow_id=None, parent=parent)
    assert parent.traceparent and child.traceparent
    assert child.traceparent.split("-")[1] == parent.traceparent.split("-")[1]
    assert child.traceparent.split("-")[2] != parent.traceparent.split("-")[2]


@pytest.mark.parametrize(
    "parent",
    [
        None,
        "",
        "garbage",
        "a-b-c",
        "00-abc-def-01",
        "00-" + "a" * 32 + "-" + "b" * 15 + "-01",
        "00-" + "g" * 32 + "-" + "h" * 16 + "-01",  # right shape, not hex
        "00-" + "z" * 32 + "-" + "b" * 16 + "-zz",
        "00-" + "0" * 32 + "-" + "b" * 16 + "-01",  # all-zero trace id is invalid (W3C)
        "00-" + "a" * 32 + "-" + "0" * 16 + "-01",  # all-zero parent id is invalid (W3C)
        "00-" + "a" * 32 + "-" + "b" * 16 + "-01\n",  # would smuggle a newline into headers
    ],
    ids=lambda p: repr(p)[:24],
)
def test_garbage_parent_gives_a_fresh_trace(parent: str | None) -> None:
    child = child_traceparent(parent)
    match = TRACEPARENT.match(child)
    assert match
    if parent:
        assert match["trace"] not in parent


def test_undecodable_header_bytes_do_not_raise() -> None:
    raw = [
        ("ce_id", b"\xff\xfe-id"),
        ("traceparent", b"\xc3\x28"),
        ("x-binary", b"\x80\x81\x82"),
        ("ce_specversion", b"\xff"),
    ]
    headers = EventHeaders.from_kafka(raw)
    assert headers.id is not None and headers.id.endswith("-id")
    assert "\ufffd" in headers.id
    assert "x-binary" in headers.extra
    assert header_value(raw, "x-binary") == "\ufffd\ufffd\ufffd"
    # and a trace continued from the broken traceparent is a fresh valid one
    assert TRACEPARENT.match(child_traceparent(headers.traceparent))


def test_header_value() -> None:
    raw = [("a", b"1"), (FLOW_ID_HEADER, b"flow-9"), ("a", b"2")]
    assert header_value(raw, FLOW_ID_HEADER) == "flow-9"
    assert header_value(raw, "a") == "1"
    assert header_value(raw, "missing") is None
    assert header_value(None, "a") is None


def test_with_extra_adds_without_mutating() -> None:
    headers = _headers()
    more = headers.with_extra(relais_attempt="3", other="x")
    assert more.extra == {**headers.extra, "relais_attempt": "3", "other": "x"}
    assert headers.extra["relais_attempt"] == "2"


def test_ce_time_is_the_current_millisecond_even_when_formatted_once_per_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from relais.wire import headers

    # 2026-12-05T01:59:17.983999999Z, then the next millisecond: truncated, never rounded
    clock = iter([1_796_435_957_983_999_999, 1_796_435_957_983_000_001,
                  1_796_435_957_984_000_000])
    monkeypatch.setattr(headers, "time", SimpleNamespace(time_ns=lambda: next(clock)))
    times = [EventHeaders.new(source="/s", type="t", subject=None, flow_id=None).time
             for _ in range(3)]
    assert times == ["2026-12-05T01:59:17.983Z"] * 2 + ["2026-12-05T01:59:17.984Z"]
    assert times[0] == datetime.fromtimestamp(1_796_435_957.983, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
