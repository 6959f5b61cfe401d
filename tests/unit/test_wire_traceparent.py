"""The ingress's shortcuts through a member's headers read what the full readers read."""

from __future__ import annotations

import random

from relais.stages.headers import strip_internal
from relais.wire import headers as wire
from relais.wire.headers import EventHeaders, child_traceparent, member_traceparent

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_member_traceparent_is_what_the_stripped_headers_say() -> None:
    rnd = random.Random(3)
    values: list[bytes | None] = [VALID.encode(), b"", None, b"\xff\xfe", b"00-zz", b"x" * 70]
    names = ["traceparent", "Traceparent", "relais_traceparent", "ce_id", "relais_flow_id"]
    for _ in range(3_000):
        headers = [(rnd.choice(names), rnd.choice(values)) for _ in range(rnd.randrange(0, 5))]
        expected = EventHeaders.from_kafka(strip_internal(headers)).traceparent
        assert member_traceparent(headers) == expected, headers  # type: ignore[arg-type]
    assert member_traceparent(None) is None


def test_a_child_continues_a_valid_parent_and_replaces_any_other() -> None:
    child = child_traceparent(VALID)
    assert child.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and child.endswith("-01")
    spans = {child_traceparent(VALID).split("-")[2] for _ in range(200)}
    assert len(spans) == 200 and "0" * 16 not in spans and VALID.split("-")[2] not in spans
    for broken in (VALID + "0", VALID[:-1], VALID.upper(), "ff" + VALID[2:],
                   VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32), "x" * 55):
        fresh = child_traceparent(broken)
        assert fresh.split("-")[1] != VALID.split("-")[1]
        assert wire._TRACEPARENT.fullmatch(fresh)


def test_a_members_long_header_is_not_remembered() -> None:
    wire._trace_of.cache_clear()
    child_traceparent("0" * 100_000)
    child_traceparent(VALID)
    assert wire._trace_of.cache_info().currsize == 1
