"""The ingress decision for one submission record, with in-memory fakes (no broker)."""

from __future__ import annotations

import asyncio
import copy
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastavro import schemaless_writer
from structlog.testing import capture_logs

from agents.ingress.gateway import ingress_router, ingress_runner
from agents.ingress.handler import (
    IngressCounters,
    IngressDeps,
    handle_submission,
)
from hub.flows import FLOWS
from relais.api.auth import hash_token
from relais.errors import Reason, UnknownMemberError, ValidationError
from relais.flows.ids import flow_id_for
from relais.flows.kit import routes_of
from relais.flows.outbound import Outbound
from relais.members.model import Member
from relais.stages.records import FakeRecord, without_internal_headers
from relais.wire.avro_codec import SINGLE_OBJECT_MARKER, AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders, header_value, new_traceparent
from topics import member as member_topics
from topics.acts import ACTS_SUBMITTED
from topics.catalogue import FLOW_EVENTS, INGRESS_DEADLETTER

SIREN = "217500016"
OTHER_SIREN = "200066389"
UNKNOWN_SIREN = "213502388"
DOC_SHA = "a" * 64
ANNEX_SHA = "b" * 64
SUBMISSIONS = member_topics.submissions(SIREN).name
NOTIFICATIONS = member_topics.notifications(SIREN).name


class DictMembers:
    def __init__(self, *members: Member) -> None:
        self.members = {m.siren: m for m in members}

    def get(self, siren: str) -> Member | None:
        member = self.members.get(siren)
        return member if member is not None and member.active else None


class DictBlobs:
    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.asked: list[str] = []

    async def stat(self, sha256: str) -> int | None:
        self.asked.append(sha256)
        return self.sizes.get(sha256)

    async def owned_by(self, sha256: str, member: str) -> bool:
        return member == SIREN  # every blob here was uploaded by SIREN


def _member(siren: str) -> Member:
    return Member(
        siren=siren,
        name=f"Commune {siren}",
        department="021",
        token_sha256=hash_token(f"token-{siren}"),
        registered_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


@pytest.fixture
def deps(codec: AvroCodec) -> IngressDeps:
    return IngressDeps(
        codec=codec,
        members=DictMembers(_member(SIREN), _member(OTHER_SIREN)),
        blobs=DictBlobs({DOC_SHA: 182_311, ANNEX_SHA: 20_480}),
        max_submission_bytes=64 * 1024,
        counters=IngressCounters(),
        routes=routes_of(FLOWS),
    )


def _acte(**changes: Any) -> dict[str, Any]:
    acte: dict[str, Any] = {
        "submission_id": "DELIB-2024-117",
        "member_siren": SIREN,
        "nature_code": 1,
        "matieres": [7, 1],
        "numero_interne": "DE2024_117",
        "decision_date": date(2024, 5, 16),
        "objet": "Subvention à l'association des Amis de la Bibliothèque",
        "document": {
            "blob": {
                "sha256": DOC_SHA,
                "size": 182_311,
                "media_type": "application/pdf",
                "filename": "deliberation-117.pdf",
            },
            "typology": "99_DE",
        },
        "annexes": [
            {
                "blob": {
                    "sha256": ANNEX_SHA,
                    "size": 20_480,
                    "media_type": "application/pdf",
                    "filename": "annexe.pdf",
                },
                "typology": None,
            }
        ],
        "document_papier": False,
        "classification_date": None,
    }
    acte.update(changes)
    return acte


PARENT_TRACEPARENT = new_traceparent()
MEMBER_HEADERS = [
    ("ce_id", b"member-event-1"),
    ("traceparent", PARENT_TRACEPARENT.encode()),
    ("x-backoffice", b"\xffopaque\x00bytes"),
]


def _record(
    value: bytes | None,
    *,
    topic: str = SUBMISSIONS,
    key: bytes | None = b"DELIB-2024-117",
    offset: int = 42,
    headers: list[tuple[str, bytes]] | None = None,
) -> FakeRecord:
    return FakeRecord(
        topic=topic,
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=list(MEMBER_HEADERS if headers is None else headers),
    )


def _decode(codec: AvroCodec, out: Outbound, schema: str) -> dict[str, Any]:
    assert out.value is not None
    decoded = codec.decode(out.value, expected=schema)
    return decoded.record


def _reasons(codec: AvroCodec, outs: list[Outbound]) -> list[dict[str, str]]:
    notification = _decode(codec, outs[0], "Notification")
    assert notification["kind"] == "REJECTED"
    reasons: list[dict[str, str]] = notification["reasons"]
    return reasons


# --- accepted ------------------------------------------------------------------------------


async def test_valid_submission_yields_three_outbounds(deps: IngressDeps, codec: AvroCodec) -> None:
    value = codec.encode("ActeSubmission", _acte())
    outs = await handle_submission(_record(value), deps)
    assert [o.topic for o in outs] == [NOTIFICATIONS, FLOW_EVENTS.name, ACTS_SUBMITTED.name]
    flow_id = flow_id_for(SIREN, "DELIB-2024-117")

    notification = _decode(codec, outs[0], "Notification")
    assert notification["kind"] == "ACCEPTED"
    assert notification["state"] == "received"
    assert notification["flow_id"] == flow_id
    assert notification["member_siren"] == SIREN
    assert notification["submission_id"] == "DELIB-2024-117"
    assert notification["flow_type"] == "acte"
    assert notification["reasons"] == []

    state = _decode(codec, outs[1], "FlowState")
    assert state["state"] == "received"
    assert state["previous_state"] is None
    assert state["stage"] == "ingress"
    assert state["sequence"] == 1
    assert state["flow_id"] == flow_id

    forwarded = outs[2]
    assert forwarded.value == value  # byte for byte, not re-encoded
    # keyed by member (topics.catalogue.ACTS_SUBMITTED): one member's actes stay in order
    assert ACTS_SUBMITTED.key.startswith("member SIREN")
    assert forwarded.key == SIREN.encode()
    assert header_value(forwarded.headers, "relais_member") == SIREN
    assert header_value(forwarded.headers, FLOW_ID_HEADER) == flow_id
    assert [name for name, _ in forwarded.headers].count(FLOW_ID_HEADER) == 1
    assert header_value(forwarded.headers, "ce_type") == "fr.relais.acts.ActeSubmission"

    for out in outs[:2]:
        assert out.key == flow_id.encode()
        assert header_value(out.headers, FLOW_ID_HEADER) == flow_id
        assert header_value(out.headers, "ce_subject") == flow_id
        assert header_value(out.headers, "ce_specversion") == "1.0"
    assert header_value(outs[0].headers, "ce_id") == notification["event_id"]
    assert header_value(outs[0].headers, "ce_type") == "fr.relais.notifications.Notification"
    assert header_value(outs[1].headers, "ce_type") == "fr.relais.flows.FlowState"

    assert deps.counters.accepted == 1
    assert deps.counters.rejected == {}
    assert sorted(deps.blobs.asked) == sorted([DOC_SHA, ANNEX_SHA])  # type: ignore[attr-defined]


async def test_outbounds_continue_the_member_trace(deps: IngressDeps, codec: AvroCodec) -> None:
    outs = await handle_submission(_record(codec.encode("ActeSubmission", _acte())), deps)
    trace_id = PARENT_TRACEPARENT.split("-")[1]
    for out in outs:
        traceparent = EventHeaders.from_kafka(out.headers).traceparent
        assert traceparent is not None
        assert traceparent.split("-")[1] == trace_id
        assert traceparent != PARENT_TRACEPARENT


async def test_submission_without_annexes_checks_only_the_document(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    outs = await handle_submission(_record(codec.encode("ActeSubmission", _acte(annexes=[]))), deps)
    assert _decode(codec, outs[0], "Notification")["kind"] == "ACCEPTED"
    assert deps.blobs.asked == [DOC_SHA]  # type: ignore[attr-defined]


async def test_same_submission_twice_gets_the_same_ids(deps: IngressDeps, codec: AvroCodec) -> None:
    value = codec.encode("ActeSubmission", _acte())
    first = await handle_submission(_record(value), deps)
    second = await handle_submission(_record(value, offset=43), deps)
    assert [o.key for o in first] == [o.key for o in second]
    assert (
        _decode(codec, first[0], "Notification")["event_id"]
        == _decode(codec, second[0], "Notification")["event_id"]
    )
    for one, two in zip(first, second, strict=True):
        assert header_value(one.headers, "ce_id") == header_value(two.headers, "ce_id"), one.topic
    ids = [header_value(o.headers, "ce_id") for o in first]
    assert len(set(ids)) == len(ids)  # distinct events of one flow have distinct ids
    assert deps.counters.accepted == 2


async def test_acceptances_are_logged_per_record_at_debug_and_summarised_at_info(
    deps: IngressDeps, codec: AvroCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.ingress import handler

    monkeypatch.setattr(handler, "SUMMARY_SECONDS", 0.05)
    with capture_logs() as logs:
        for offset in range(3):
            acte = _acte(submission_id=f"DELIB-{offset}")
            await handle_submission(_record(codec.encode("ActeSubmission", acte),
                                            offset=offset), deps)
        per_record = [e for e in logs if e["event"] == "ingress.accepted"]
        assert [e["log_level"] for e in per_record] == ["debug"] * 3
        assert [e["flow_type"] for e in per_record] == ["acte"] * 3
        assert not [e for e in logs if e["event"] == "ingress.accepted_summary"]
        await asyncio.sleep(0.2)
    [summary] = [e for e in logs if e["event"] == "ingress.accepted_summary"]
    assert summary["log_level"] == "info"
    assert summary["accepted"] == 3 and summary["by_flow_type"] == {"acte": 3}
    assert summary["accepted_since_start"] == 3
    assert "flow_id" not in summary and "offset" not in summary  # no record's context
    assert deps.counters.unsummarised == {}


async def test_the_ingress_runner_summarises_what_is_left_when_it_stops(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    deps.counters.accept("acte")
    deps.counters.accept("registry_lookup")
    runner = ingress_runner("127.0.0.1:1", deps, group_id="g")
    with capture_logs() as logs:
        await runner.stop()  # never started: stopping still summarises
    [summary] = [e for e in logs if e["event"] == "ingress.accepted_summary"]
    assert summary["by_flow_type"] == {"acte": 1, "registry_lookup": 1}
    with capture_logs() as logs:
        deps.counters.summarise()
    assert logs == []  # nothing new, no line


async def test_same_rejected_record_twice_gets_the_same_ids(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    value = codec.encode("ActeSubmission", _acte(member_siren=OTHER_SIREN))
    first = await handle_submission(_record(value), deps)
    second = await handle_submission(_record(value), deps)
    for one, two in zip(first, second, strict=True):
        assert header_value(one.headers, "ce_id") == header_value(two.headers, "ce_id")
    assert deps.counters.rejected == {"invalid_envelope": 2}


async def test_different_submissions_get_different_flows(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    one = await handle_submission(_record(codec.encode("ActeSubmission", _acte())), deps)
    two = await handle_submission(
        _record(codec.encode("ActeSubmission", _acte(submission_id="DELIB-2024-118"))), deps
    )
    assert one[0].key != two[0].key
    assert header_value(one[0].headers, "ce_id") != header_value(two[0].headers, "ce_id")


# --- rejected ------------------------------------------------------------------------------


async def test_member_siren_mismatch_is_rejected(deps: IngressDeps, codec: AvroCodec) -> None:
    value = codec.encode("ActeSubmission", _acte(member_siren=OTHER_SIREN))
    with capture_logs() as logs:
        outs = await handle_submission(_record(value), deps)
    assert [o.topic for o in outs] == [NOTIFICATIONS, FLOW_EVENTS.name]
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [("member_siren", "member_mismatch")]
    assert OTHER_SIREN in reasons[0]["message"]
    state = _decode(codec, outs[1], "FlowState")
    assert state["state"] == "rejected"
    assert state["error_code"] == "invalid_envelope"
    assert deps.counters.accepted == 0
    assert deps.counters.rejected == {"invalid_envelope": 1}
    rejected = [e for e in logs if e["event"] == "ingress.rejected"]
    assert len(rejected) == 1
    assert rejected[0]["code"] == "invalid_envelope"
    assert rejected[0]["fields"] == ["member_siren"]
    assert rejected[0]["log_level"] == "warning"


async def test_missing_blob_is_rejected(deps: IngressDeps, codec: AvroCodec) -> None:
    acte = _acte()
    acte["document"]["blob"]["sha256"] = "c" * 64
    outs = await handle_submission(_record(codec.encode("ActeSubmission", acte)), deps)
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [
        ("document.blob.sha256", "blob_not_found")
    ]
    assert "c" * 64 in reasons[0]["message"]


async def test_annex_of_the_wrong_size_is_rejected(deps: IngressDeps, codec: AvroCodec) -> None:
    acte = _acte()
    acte["annexes"][0]["blob"]["size"] = 20_481
    outs = await handle_submission(_record(codec.encode("ActeSubmission", acte)), deps)
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [
        ("annexes[0].blob.size", "blob_size_mismatch")
    ]


async def test_every_reason_is_reported_at_once(deps: IngressDeps, codec: AvroCodec) -> None:
    acte = _acte(submission_id="", member_siren=OTHER_SIREN)
    acte["document"]["blob"]["sha256"] = "c" * 64
    second_annex = copy.deepcopy(acte["annexes"][0])
    second_annex["blob"]["size"] = 1
    acte["annexes"].append(second_annex)
    outs = await handle_submission(_record(codec.encode("ActeSubmission", acte)), deps)
    fields = [r["field"] for r in _reasons(codec, outs)]
    assert fields == [
        "submission_id",
        "member_siren",
        "document.blob.sha256",
        "annexes[1].blob.size",
    ]


async def test_oversize_record_is_rejected(deps: IngressDeps, codec: AvroCodec) -> None:
    value = codec.encode("ActeSubmission", _acte(objet="x" * (70 * 1024)))
    assert len(value) > deps.max_submission_bytes
    with capture_logs() as logs:
        outs = await handle_submission(_record(value), deps)
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [("value", "oversize")]
    notification = _decode(codec, outs[0], "Notification")
    assert notification["flow_type"] == "unknown"
    assert notification["submission_id"] == "DELIB-2024-117"  # from the record key
    assert _decode(codec, outs[1], "FlowState")["error_code"] == "oversize"
    assert deps.counters.rejected == {"oversize": 1}
    assert [e["code"] for e in logs if e["event"] == "ingress.rejected"] == ["oversize"]
    assert deps.blobs.asked == []  # type: ignore[attr-defined]


async def test_garbage_bytes_are_rejected_as_value_decode(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    with capture_logs() as logs:
        outs = await handle_submission(_record(b'{"submission_id": "x"}'), deps)
    assert [o.topic for o in outs] == [NOTIFICATIONS, FLOW_EVENTS.name]
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [("value", "value_decode")]
    assert _decode(codec, outs[1], "FlowState")["error_code"] == "value_decode"
    assert deps.counters.rejected == {"value_decode": 1}
    assert [e["code"] for e in logs if e["event"] == "ingress.rejected"] == ["value_decode"]


async def test_empty_value_without_key_is_rejected(deps: IngressDeps, codec: AvroCodec) -> None:
    outs = await handle_submission(_record(None, key=None), deps)
    notification = _decode(codec, outs[0], "Notification")
    assert notification["submission_id"] is None
    assert notification["flow_id"].startswith(f"{SIREN}-")
    assert deps.counters.rejected == {"value_decode": 1}


async def test_unknown_fingerprint_is_rejected_as_unknown_schema(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    value = codec.encode("ActeSubmission", _acte())
    forged = value[:2] + bytes(8) + value[10:]
    outs = await handle_submission(_record(forged), deps)
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [("value", "unknown_schema")]
    assert deps.counters.rejected == {"unknown_schema": 1}


@pytest.mark.parametrize("schema", ["Member", "Notification"])
async def test_a_known_schema_that_is_not_a_submission_is_unsupported(
    deps: IngressDeps, codec: AvroCodec, schema: str
) -> None:
    records = {
        "Member": _member(SIREN).to_record(),
        "Notification": {
            "event_id": "e",
            "flow_id": "f",
            "member_siren": SIREN,
            "flow_type": "acte",
            "kind": "ACCEPTED",
            "state": "received",
            "message": "m",
            "occurred_at": datetime(2024, 1, 1, tzinfo=UTC),
        },
    }
    outs = await handle_submission(_record(codec.encode(schema, records[schema])), deps)
    assert [o.topic for o in outs] == [NOTIFICATIONS, FLOW_EVENTS.name]
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [("value", "unsupported_schema")]
    assert deps.counters.rejected == {"unsupported_schema": 1}
    assert deps.counters.accepted == 0


# --- dead letters --------------------------------------------------------------------------


async def _dead_letter(record: FakeRecord, deps: IngressDeps) -> Outbound:
    """What the ingress stage publishes for a record the handler raises on."""
    with pytest.raises(UnknownMemberError) as raised:
        await handle_submission(record, deps)
    with capture_logs() as logs:
        outs = ingress_router("relais-hub-ingress", deps.codec).route(
            without_internal_headers(record), raised.value
        )
    assert len(outs) == 1, "nobody to tell: the dead letter only"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["stage.dead_lettered"]
    return outs[0]


async def test_unknown_member_goes_to_the_dead_letter_topic_byte_for_byte(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    value = codec.encode("ActeSubmission", _acte(member_siren=UNKNOWN_SIREN))
    topic = member_topics.submissions(UNKNOWN_SIREN).name
    record = _record(value, topic=topic, key=b"\x00raw-key\xff", offset=7)
    out = await _dead_letter(record, deps)
    assert out.topic == INGRESS_DEADLETTER.name
    assert out.key == b"\x00raw-key\xff"
    assert out.value == value
    assert out.headers[: len(MEMBER_HEADERS)] == MEMBER_HEADERS
    added = dict(out.headers[len(MEMBER_HEADERS) :])
    assert set(added) == {
        "relais_dlq_origin_topic",
        "relais_dlq_origin_partition",
        "relais_dlq_origin_offset",
        "relais_dlq_stage",
        "relais_dlq_group",
        "relais_dlq_error_class",
        "relais_dlq_error_code",
        "relais_dlq_error_message",
        "relais_dlq_stack",
        "relais_attempt",
        "relais_first_failure_at",
        "relais_last_failure_at",
    }
    assert added["relais_dlq_origin_topic"] == topic.encode()
    assert added["relais_dlq_origin_partition"] == b"0"
    assert added["relais_dlq_origin_offset"] == b"7"
    assert added["relais_dlq_stage"] == b"ingress"
    assert added["relais_dlq_group"] == b"relais-hub-ingress"
    assert added["relais_dlq_error_class"] == b"relais.errors.UnknownMemberError"
    assert added["relais_dlq_error_code"] == b"unknown_member"
    assert b"handle_submission" in added["relais_dlq_stack"]
    assert b"unknown_member" in added["relais_dlq_error_message"]
    assert deps.counters.accepted == 0
    assert sum(deps.counters.rejected.values()) == 1


async def test_unreadable_record_of_an_unknown_member_is_dead_lettered(
    deps: IngressDeps,
) -> None:
    topic = member_topics.submissions(UNKNOWN_SIREN).name
    out = await _dead_letter(_record(b"\x00garbage", topic=topic, headers=[]), deps)
    assert out.topic == INGRESS_DEADLETTER.name
    assert out.value == b"\x00garbage"
    assert dict(out.headers)["relais_dlq_error_code"] == b"unknown_member"
    assert b"value_decode" in dict(out.headers)["relais_dlq_error_message"]
    assert deps.counters.rejected == {"value_decode": 1}


async def test_a_dead_letter_keeps_none_of_the_members_internal_headers(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    topic = member_topics.submissions(UNKNOWN_SIREN).name
    forged = [*MEMBER_HEADERS, (FLOW_ID_HEADER, flow_id_for(SIREN, "A-1").encode()),
              ("relais_member", SIREN.encode()), ("relais_dlq_stage", b"acts-delivery")]
    out = await _dead_letter(_record(b"\x00garbage", topic=topic, headers=forged), deps)
    assert header_value(out.headers, FLOW_ID_HEADER) is None
    assert header_value(out.headers, "relais_member") is None
    assert header_value(out.headers, "relais_dlq_stage") == "ingress"


async def test_inactive_member_is_treated_as_unknown(deps: IngressDeps, codec: AvroCodec) -> None:
    members = DictMembers(
        _member(SIREN), Member(**{**_member(OTHER_SIREN).__dict__, "active": False})
    )
    inactive = IngressDeps(
        codec=codec,
        members=members,
        blobs=deps.blobs,
        max_submission_bytes=65536,
        counters=IngressCounters(),
        routes=deps.routes,
    )
    value = codec.encode("ActeSubmission", _acte(member_siren=OTHER_SIREN))
    record = _record(value, topic=member_topics.submissions(OTHER_SIREN).name)
    assert (await _dead_letter(record, inactive)).topic == INGRESS_DEADLETTER.name


# --- hostile input: always a typed rejection to the member, never an exception -------------


def overflowing(codec: AvroCodec, **changes: Any) -> bytes:
    """An ActeSubmission whose decision_date is 2**31-1 days after 1970: valid Avro (an int),
    too large for a date. The logical type is not part of the fingerprint."""
    schema = codec.catalog.current("ActeSubmission")
    acte = {**_acte(), "decision_date": 2**31 - 1, **changes}
    body = io.BytesIO()
    schemaless_writer(body, schema.plain, acte)
    return SINGLE_OBJECT_MARKER + schema.fingerprint + body.getvalue()


async def test_a_date_too_large_is_rejected_naming_the_field(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    outs = await handle_submission(_record(overflowing(codec)), deps)
    assert [o.topic for o in outs] == [NOTIFICATIONS, FLOW_EVENTS.name]
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [("decision_date", "out_of_range")]
    assert "2147483647" in reasons[0]["message"]
    assert deps.counters.rejected == {"value_decode": 1}


async def test_a_sha256_that_is_not_64_hex_digits_is_rejected_without_asking_the_store(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    acte = _acte()
    acte["document"]["blob"]["sha256"] = "../../etc/passwd"
    acte["annexes"][0]["blob"]["sha256"] = "Z" * 64
    outs = await handle_submission(_record(codec.encode("ActeSubmission", acte)), deps)
    reasons = _reasons(codec, outs)
    assert [(r["field"], r["code"]) for r in reasons] == [
        ("document.blob.sha256", "invalid_sha256"), ("annexes[0].blob.sha256", "invalid_sha256"),
    ]
    assert deps.blobs.asked == []  # type: ignore[attr-defined]


async def test_an_upper_case_digest_is_still_looked_up(deps: IngressDeps, codec: AvroCodec) -> None:
    acte = _acte(annexes=[])
    acte["document"]["blob"]["sha256"] = DOC_SHA.upper()
    outs = await handle_submission(_record(codec.encode("ActeSubmission", acte)), deps)
    assert deps.blobs.asked == [DOC_SHA.upper()]  # type: ignore[attr-defined]
    assert _decode(codec, outs[0], "Notification")["kind"] == "REJECTED"  # the fake is exact


class BrokenBlobs:
    async def stat(self, sha256: str) -> int | None:
        raise ValidationError("store refused it", reasons=[
            Reason("sha256", "invalid_sha256", "A SHA-256 digest must be 64 hexadecimal digits.")])


class BuggyBlobs:
    async def stat(self, sha256: str) -> int | None:
        raise OverflowError("a check blew up")


@pytest.mark.parametrize(("blobs", "code", "field"), [
    (BrokenBlobs(), "validation", "sha256"), (BuggyBlobs(), "unprocessable", "value"),
])
async def test_any_exception_while_checking_becomes_a_rejection(
    deps: IngressDeps, codec: AvroCodec, blobs: Any, code: str, field: str
) -> None:
    broken = IngressDeps(codec=codec, members=deps.members, blobs=blobs,
                         max_submission_bytes=65536, counters=IngressCounters(),
                         routes=deps.routes)
    with capture_logs() as logs:
        outs = await handle_submission(_record(codec.encode("ActeSubmission", _acte())), broken)
    reasons = _reasons(codec, outs)
    assert [r["field"] for r in reasons] == [field]
    assert _decode(codec, outs[1], "FlowState")["error_code"] == code
    assert broken.counters.rejected == {code: 1}
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["ingress.check_failed"]


async def test_a_members_internal_headers_are_never_read_or_forwarded(
    deps: IngressDeps, codec: AvroCodec
) -> None:
    other_flow = flow_id_for(OTHER_SIREN, "ACKNOWLEDGED-1")
    forged = [*MEMBER_HEADERS, (FLOW_ID_HEADER, other_flow.encode()),
              ("relais_member", OTHER_SIREN.encode()), ("relais_attempt", b"not a number"),
              ("relais_delay_target", b"relais.acts.delivery"),
              ("ce_dataschema", b"urn:relais:schema:forged:v99")]
    value = codec.encode("ActeSubmission", _acte())
    outs = await handle_submission(_record(value, headers=forged), deps)
    own = flow_id_for(SIREN, "DELIB-2024-117")
    for out in outs:
        assert header_value(out.headers, FLOW_ID_HEADER) == own
        assert other_flow.encode() not in b"".join(v for _, v in out.headers)
        assert header_value(out.headers, "relais_attempt") is None
        assert header_value(out.headers, "relais_delay_target") is None
    forwarded = outs[2]
    assert header_value(forwarded.headers, "relais_member") == SIREN
    assert header_value(forwarded.headers, "ce_dataschema") == (
        "urn:relais:schema:fr.relais.acts.ActeSubmission:v2")
    # and a rejection goes to the topic's member, whatever the headers say
    rejected = await handle_submission(_record(overflowing(codec), headers=forged), deps)
    assert [o.topic for o in rejected] == [NOTIFICATIONS, FLOW_EVENTS.name]
    assert all(header_value(o.headers, FLOW_ID_HEADER) == own for o in rejected)


def test_the_ingress_runner_strips_internal_headers_before_anything_reads_them(
    deps: IngressDeps,
) -> None:
    runner = ingress_runner("127.0.0.1:1", deps, group_id="g")
    record = _record(b"x", headers=[(FLOW_ID_HEADER, b"f"), ("relais_member", b"m"),
                                    ("ce_id", b"1")])
    assert runner._prepared(record).headers == (("ce_id", b"1"),)


async def test_foreign_topic_yields_nothing(deps: IngressDeps, codec: AvroCodec) -> None:
    value = codec.encode("ActeSubmission", _acte())
    assert await handle_submission(_record(value, topic=ACTS_SUBMITTED.name), deps) == []
    assert deps.counters.accepted == 0 and deps.counters.rejected == {}


async def test_a_huge_key_counts_toward_the_size_limit(deps: IngressDeps, codec: AvroCodec) -> None:
    value = codec.encode("ActeSubmission", _acte())
    outs = await handle_submission(_record(value, key=b"k" * (64 * 1024)), deps)
    assert [(r["field"], r["code"]) for r in _reasons(codec, outs)] == [("value", "oversize")]
