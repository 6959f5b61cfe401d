"""The failure router: retry tiers, Retry-After, dead letters with context, per-member policy."""

from __future__ import annotations

import pytest

from relais.errors import (
    ConfigurationError,
    PartnerPermanentError,
    PartnerTransientError,
    ValueDecodeError,
)
from relais.flows.ids import flow_id_for
from relais.stages import headers as h
from relais.stages.failures import (
    FailureRouter,
    RetryPolicy,
    dead_letter_record,
    parse_tiers,
    partner_policies,
)
from relais.stages.records import FakeRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER

CODEC = AvroCodec()
SIREN = "212102313"
FLOW = flow_id_for(SIREN, "DELIB-1")


def router(**kwargs: object) -> FailureRouter:
    return FailureRouter(stage="acts-delivery", group_id="g", flow_type="acte",
                         dlq_topic="relais.dlq.acts-delivery", codec=CODEC, **kwargs)  # type: ignore[arg-type]


def record(attempt: int | None = None, member: str | None = SIREN) -> FakeRecord:
    headers = [(FLOW_ID_HEADER, FLOW.encode()), ("ce_id", b"x")]
    if member:
        headers.append((h.MEMBER, member.encode()))
    if attempt is not None:
        headers.append((h.ATTEMPT, str(attempt).encode()))
    return FakeRecord(topic="relais.acts.delivery", value=b"\x01\x02", key=FLOW.encode(),
                      partition=2, offset=41, headers=tuple(headers))


def test_transient_errors_climb_the_tiers_then_dead_letter() -> None:
    r = router(policy=RetryPolicy(("30s", "5m", "1h")))
    exc = PartnerTransientError("down", partner="tdt", status=503)
    topics = []
    current = record()
    for _ in range(4):
        outputs = r.route(current, exc)
        topics.append(outputs[0].topic)
        current = FakeRecord(topic=current.topic, value=current.value, key=current.key,
                             headers=tuple(outputs[0].headers))
    assert topics == ["relais.delay.30s", "relais.delay.5m", "relais.delay.1h",
                      "relais.dlq.acts-delivery"]


def test_retry_keeps_the_record_and_names_its_target() -> None:
    out = router().route(record(), PartnerTransientError("x", partner="tdt"))[0]
    assert out.value == b"\x01\x02" and out.key == FLOW.encode()
    assert h.get(out.headers, h.DELAY_TARGET) == "relais.acts.delivery"
    assert h.get(out.headers, h.ATTEMPT) == "1"
    assert h.get(out.headers, FLOW_ID_HEADER) == FLOW


def test_retry_after_longer_than_the_tier_moves_to_a_longer_tier() -> None:
    exc = PartnerTransientError("busy", partner="tdt", status=429, retry_after=240)
    out = router(policy=RetryPolicy(("30s",))).route(record(), exc)[0]
    assert out.topic == "relais.delay.5m"


def test_permanent_error_goes_straight_to_the_dead_letter_with_context() -> None:
    outputs = router().route(record(), PartnerPermanentError("bad", partner="tdt", status=403))
    dlq, notification, state = outputs
    assert dlq.topic == "relais.dlq.acts-delivery" and dlq.value == b"\x01\x02"
    assert dlq.key == FLOW.encode()
    assert h.get(dlq.headers, h.DLQ_GROUP) == "g"
    assert h.get(dlq.headers, h.DLQ_STAGE) == "acts-delivery"
    assert h.get(dlq.headers, h.DLQ_ORIGIN_TOPIC) == "relais.acts.delivery"
    assert h.get(dlq.headers, h.DLQ_ORIGIN_PARTITION) == "2"
    assert h.get(dlq.headers, h.DLQ_ORIGIN_OFFSET) == "41"
    assert h.get(dlq.headers, h.DLQ_ERROR_CLASS) == "relais.errors.PartnerPermanentError"
    assert h.get(dlq.headers, h.DLQ_ERROR_CODE) == "partner_permanent"
    assert "PartnerPermanentError" in (h.get(dlq.headers, h.DLQ_STACK) or "")
    assert h.get(dlq.headers, "ce_id") == "x"  # original headers kept
    assert notification.topic == "relais.member.212102313.notifications"
    note = CODEC.decode(notification.value or b"", expected="Notification").record
    assert note["kind"] == "FAILED" and note["state"] == "failed"
    assert CODEC.decode(state.value or b"", expected="FlowState").record["state"] == "failed"


def test_errors_outside_the_tree_are_bugs_and_not_retried() -> None:
    outputs = router().route(record(), KeyError("boom"))
    assert outputs[0].topic == "relais.dlq.acts-delivery"
    assert h.get(outputs[0].headers, h.DLQ_ERROR_CODE) == "bug"


def test_decode_errors_are_permanent() -> None:
    outputs = router().route(record(), ValueDecodeError("garbage"))
    assert outputs[0].topic == "relais.dlq.acts-delivery"


def test_without_member_no_notification_is_attempted() -> None:
    outputs = router().route(record(member=None), ValueDecodeError("garbage"))
    assert [o.topic for o in outputs] == ["relais.dlq.acts-delivery"]


def test_a_member_policy_wins_over_the_partner_policy() -> None:
    r = router(policy=RetryPolicy(("1h",)),
               policy_for=lambda siren: RetryPolicy(("5s",)) if siren == "212102313" else None)
    exc = PartnerTransientError("x", partner="tdt")
    assert r.route(record(), exc)[0].topic == "relais.delay.5s"
    assert r.route(record(member="217100072"), exc)[0].topic == "relais.delay.1h"


def test_tier_and_partner_policy_parsing() -> None:
    assert parse_tiers(" 30s, 5m ,1h") == ("30s", "5m", "1h")
    with pytest.raises(ConfigurationError, match="7s"):
        parse_tiers("7s")
    policies = partner_policies("tdt=5s,30s;sirene=1h")
    assert policies["tdt"].tiers == ("5s", "30s") and policies["sirene"].tiers == ("1h",)


# --- hostile headers: the router reads them defensively and never raises ------------------


def hostile(*headers: tuple[str, bytes | None]) -> FakeRecord:
    return FakeRecord(topic="relais.acts.delivery", value=b"\x01", key=b"k", partition=1,
                      offset=7, headers=tuple(headers))  # type: ignore[arg-type]


@pytest.mark.parametrize("attempt", [b"abc", b"-3", b"1e9", b"\xff\xfe", b"", b"9" * 40,
                                     "٣".encode(), None])
def test_a_garbled_attempt_header_counts_as_no_attempt(attempt: bytes | None) -> None:
    exc = PartnerTransientError("down", partner="tdt")
    outputs = router().route(hostile((h.ATTEMPT, attempt), (h.FIRST_FAILURE_AT, b"\x00x")), exc)
    assert outputs[0].topic == "relais.delay.30s"
    assert h.get(outputs[0].headers, h.ATTEMPT) == "1"
    first = h.get(outputs[0].headers, h.FIRST_FAILURE_AT) or ""
    assert first.isdigit(), first


def test_garbage_non_utf8_and_null_headers_still_give_a_dead_letter() -> None:
    record = hostile((FLOW_ID_HEADER, b"\xff\xfe\x00"), (h.MEMBER, None), ("x", b"\x80" * 5000),
                     (h.ATTEMPT, None), (h.REPLAY_COUNT, b"\xff"))
    outputs = router().route(record, ValueDecodeError("garbage"))
    assert [o.topic for o in outputs] == ["relais.dlq.acts-delivery"]
    kept = dict(outputs[0].headers)
    assert kept["x"] == b"\x80" * 5000  # byte for byte
    assert kept[h.MEMBER] == b""  # a null value is written back empty, never crashes
    assert kept[h.DLQ_ERROR_CODE] == b"value_decode"


@pytest.mark.parametrize(
    ("flow", "member"),
    [
        (FLOW, "not-a-siren"),  # a member header that is no SIREN
        (FLOW, "217100072"),  # a flow of another member than the one named
        ("flow-1", SIREN),  # not a flow id
        (FLOW + "x", SIREN),
    ],
)
def test_nobody_is_told_when_flow_and_member_headers_do_not_agree(flow: str, member: str) -> None:
    record = hostile((FLOW_ID_HEADER, flow.encode()), (h.MEMBER, member.encode()))
    outputs = router().route(record, PartnerPermanentError("bad", partner="tdt"))
    assert [o.topic for o in outputs] == ["relais.dlq.acts-delivery"]


def test_a_failing_retry_policy_falls_back_to_a_dead_letter() -> None:
    def broken(siren: str | None) -> RetryPolicy | None:
        raise RuntimeError("directory bug")

    outputs = router(policy_for=broken).route(record(), PartnerTransientError("x", partner="tdt"))
    assert [o.topic for o in outputs] == ["relais.dlq.acts-delivery"]
    assert h.get(outputs[0].headers, h.DLQ_ERROR_CLASS) == "relais.errors.PartnerTransientError"


def test_an_exception_whose_str_fails_is_still_dead_lettered() -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    outputs = router().route(record(), Nasty())
    assert outputs[0].topic == "relais.dlq.acts-delivery"
    assert h.get(outputs[0].headers, h.DLQ_ERROR_MESSAGE) == "Nasty"
    assert h.get(outputs[0].headers, h.DLQ_ERROR_CODE) == "bug"


def test_the_one_dead_letter_builder_names_origin_group_class_and_stack() -> None:
    try:
        raise KeyError("inside a handler")
    except KeyError as exc:
        out = dead_letter_record(record(), exc, stage="ingress", group_id="hub-ingress",
                                 dlq_topic="relais.dlq.ingress", attempts=5)
    assert out.topic == "relais.dlq.ingress" and out.value == b"\x01\x02"
    assert h.get(out.headers, h.DLQ_GROUP) == "hub-ingress"
    assert h.get(out.headers, h.DLQ_STAGE) == "ingress"
    assert h.get(out.headers, h.DLQ_ERROR_CLASS) == "builtins.KeyError"
    assert "inside a handler" in (h.get(out.headers, h.DLQ_STACK) or "")
    assert "test_the_one_dead_letter_builder" in (h.get(out.headers, h.DLQ_STACK) or "")
    assert h.get(out.headers, h.ATTEMPT) == "5"
    assert h.get(out.headers, h.DLQ_ORIGIN_OFFSET) == "41"


def test_strip_internal_drops_every_relais_header_but_a_plain_replay_count() -> None:
    headers = [("ce_id", b"1"), (FLOW_ID_HEADER, b"f"), (h.MEMBER, b"m"), ("RELAIS_ATTEMPT", b"3"),
               (h.DLQ_STAGE, b"x"), ("traceparent", b"t"), (h.REPLAY_COUNT, b"2"), ("n", None)]
    assert h.strip_internal(headers) == [("ce_id", b"1"), ("traceparent", b"t"), ("n", b""),
                                         (h.REPLAY_COUNT, b"2")]
    assert h.strip_internal([(h.REPLAY_COUNT, b"lots")]) == []
    assert h.get_count([(h.REPLAY_COUNT, b"99999999")], h.REPLAY_COUNT) == 0
