"""`relais flows resolve`: settling an uncertain flow, with an in-memory journal (no broker)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.acts.links import ActeLink
from hub.cli import flows_cmd
from ops.acts_deps import operator_acts_deps
from ops.resolve import DeliveryRecord, Resolution, resolve
from relais.errors import ValidationError
from relais.flows.outbound import Outbound
from relais.journal.entry import JournalEntry, Step
from relais.settings import Settings
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, header_value
from topics import member as member_topics
from topics.acts import ACTS_DELIVERY, ACTS_STATUS
from topics.catalogue import FLOW_EVENTS, OPS_AUDIT
from topics.journal import DELIVERY_JOURNAL

SIREN = "217500016"
FLOW = f"{SIREN}-3f1c9a52-0d6e-5b8f-9a41-2c7d8e9f0a1b"
ID_ACTE = "021-217500016-20240516-DE2024_117-DE"
SUBMISSION_VALUE = b"\xc3\x01 an ActeSubmission, byte for byte"


def _link(delivery: Step = "UNCERTAIN", transaction_id: str | None = None) -> ActeLink:
    return ActeLink(
        flow_id=FLOW, member_siren=SIREN, submission_id="DELIB-117", id_acte=ID_ACTE,
        numero_interne="DE2024_117", decision_date=date(2024, 5, 16), nature_code=1,
        delivery=delivery, idempotency_key=f"{FLOW}:post", tdt_url="https://tdt.example.org",
        transaction_id=transaction_id,
    )


class FakeIO:
    def __init__(self, link: ActeLink | None, record: DeliveryRecord | None = None) -> None:
        self._link = link
        self._record = record
        self.published: list[list[Outbound]] = []

    async def link(self, flow_id: str) -> ActeLink | None:
        return self._link if self._link is not None and self._link.flow_id == flow_id else None

    async def delivery_record(self, flow_id: str) -> DeliveryRecord | None:
        return self._record

    async def publish(self, outbounds: list[Outbound]) -> None:
        self.published.append(outbounds)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(environ={}, data_dir=tmp_path, poll_tiers="2m,10m,1h")


@pytest.fixture
def codec() -> AvroCodec:
    return AvroCodec()


def _by_topic(outs: list[Outbound], topic: str) -> Outbound:
    found = [o for o in outs if o.topic == topic]
    assert len(found) == 1, [o.topic for o in outs]
    return found[0]


def _journal_link(codec: AvroCodec, outs: list[Outbound]) -> ActeLink:
    record = _decode(codec, _by_topic(outs, DELIVERY_JOURNAL.name), "JournalEntry")
    return ActeLink.of(JournalEntry.from_record(record))


def _decode(codec: AvroCodec, out: Outbound, schema: str) -> dict[str, Any]:
    assert out.value is not None
    record: dict[str, Any] = codec.decode(out.value, expected=schema).record
    return record


DELIVERY_HEADERS = [
    (FLOW_ID_HEADER, FLOW.encode()), (h.MEMBER, SIREN.encode()), ("traceparent", b"00-a-b-01"),
    (h.ATTEMPT, b"3"), (h.LAST_ERROR, b"partner_timeout"),
]


@pytest.mark.parametrize(("link", "said"), [
    (None, "no delivery journal entry"),
    (_link("POSTED", "4242"), "POSTED (posted (transaction 4242))"),
    (_link("VALIDATED"), "VALIDATED"),
    (_link("POSTING"), "POSTING (being posted)"),
    (_link("REFUSED"), "REFUSED (refused by the TdT)"),
])
@pytest.mark.parametrize("transaction_id", ["4242", None])
async def test_a_flow_that_is_not_uncertain_is_refused_and_nothing_is_published(
    settings: Settings, codec: AvroCodec, link: ActeLink | None, said: str,
    transaction_id: str | None,
) -> None:
    io = FakeIO(link, DeliveryRecord(SUBMISSION_VALUE, DELIVERY_HEADERS))
    with pytest.raises(ValidationError) as refused:
        await resolve(io, operator_acts_deps(settings, codec), FLOW,
                      transaction_id=transaction_id, operator="alice",
                      reason="checked on the TdT")
    assert said in refused.value.message
    assert refused.value.reasons[0].code == "not_uncertain"
    assert not refused.value.retriable
    assert io.published == []


async def test_posted_records_posted_moves_the_flow_and_schedules_the_first_poll(
    settings: Settings, codec: AvroCodec,
) -> None:
    io = FakeIO(_link())
    done = await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id="4242",
                         operator="alice", reason="seen on the TdT")
    assert done == Resolution(FLOW, SIREN, ID_ACTE, "posted", "4242", done.run_id,
                              done.published)
    [outs] = io.published
    link = _journal_link(codec, outs)
    assert (link.delivery, link.transaction_id) == ("POSTED", "4242")
    assert link.tdt_url == "https://tdt.example.org"

    event = _decode(codec, _by_topic(outs, FLOW_EVENTS.name), "FlowState")
    assert (event["state"], event["previous_state"], event["stage"]) == \
        ("posted", "uncertain", "operator")
    assert event["details"]["transaction_id"] == "4242"
    note = _decode(codec, _by_topic(outs, member_topics.notifications(SIREN).name),
                   "Notification")
    assert (note["kind"], note["state"], note["partner_ref"]) == \
        ("STATE_CHANGED", "posted", ID_ACTE)

    # the first status check, on the first poll tier, as acts-delivery schedules it
    check_out = _by_topic(outs, "relais.delay.2m")
    assert header_value(check_out.headers, h.DELAY_TARGET) == ACTS_STATUS.name
    assert header_value(check_out.headers, h.MEMBER) == SIREN
    assert check_out.key == FLOW.encode()
    check = _decode(codec, check_out, "ActeStatusCheck")
    assert (check["flow_id"], check["transaction_id"], check["polls"]) == (FLOW, "4242", 0)

    audit = _decode(codec, _by_topic(outs, OPS_AUDIT.name), "AuditEntry")
    assert (audit["action"], audit["operator"], audit["reason"]) == \
        ("resolve-posted", "alice", "seen on the TdT")
    assert (audit["flow_id"], audit["member_siren"], audit["run_id"]) == \
        (FLOW, SIREN, done.run_id)
    assert audit["details"]["transaction_id"] == "4242"
    assert audit["details"]["previous_delivery"] == "UNCERTAIN"


async def test_posted_without_a_reason_audits_a_default_one(
    settings: Settings, codec: AvroCodec,
) -> None:
    io = FakeIO(_link())
    await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id="77",
                  operator="bob", reason="  ")
    audit = _decode(codec, _by_topic(io.published[0], OPS_AUDIT.name), "AuditEntry")
    assert audit["reason"] == "found on the TdT as transaction 77"


@pytest.mark.parametrize("bad", ["", "12 34", "x" * 65, "4242;DROP", "../4242"])
async def test_a_malformed_transaction_id_is_refused(
    settings: Settings, codec: AvroCodec, bad: str,
) -> None:
    io = FakeIO(_link())
    with pytest.raises(ValidationError, match="transaction id"):
        await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id=bad,
                      operator="alice", reason="r")
    assert io.published == []


async def test_not_posted_validates_again_and_resends_the_submission_through_a_delay(
    settings: Settings, codec: AvroCodec,
) -> None:
    io = FakeIO(_link(), DeliveryRecord(SUBMISSION_VALUE, DELIVERY_HEADERS))
    done = await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id=None,
                         operator="alice", reason="not in the TdT's list of actes")
    assert (done.outcome, done.transaction_id) == ("not-posted", None)
    [outs] = io.published
    link = _journal_link(codec, outs)
    assert (link.delivery, link.transaction_id) == ("VALIDATED", None)

    event = _decode(codec, _by_topic(outs, FLOW_EVENTS.name), "FlowState")
    assert (event["state"], event["previous_state"], event["stage"]) == \
        ("validated", "uncertain", "operator")

    resent = _by_topic(outs, "relais.delay.5s")
    assert resent.value == SUBMISSION_VALUE
    assert resent.key == FLOW.encode()
    assert header_value(resent.headers, h.DELAY_TARGET) == ACTS_DELIVERY.name
    assert header_value(resent.headers, FLOW_ID_HEADER) == FLOW
    assert header_value(resent.headers, h.MEMBER) == SIREN
    assert header_value(resent.headers, "traceparent") == "00-a-b-01"
    assert header_value(resent.headers, h.ATTEMPT) is None  # a fresh post, not a retry
    assert header_value(resent.headers, h.LAST_ERROR) is None

    audit = _decode(codec, _by_topic(outs, OPS_AUDIT.name), "AuditEntry")
    assert (audit["action"], audit["reason"], audit["target_topic"]) == \
        ("resolve-not-posted", "not in the TdT's list of actes", ACTS_DELIVERY.name)
    # the journal entry comes before the record that makes delivery read it
    topics = [o.topic for o in outs]
    assert topics.index(DELIVERY_JOURNAL.name) < topics.index("relais.delay.5s")


@pytest.mark.parametrize("bad", ["", "217500016", f"{FLOW}x", "../" + FLOW, FLOW.upper(),
                                 "217500016-" + "0" * 36])
async def test_a_malformed_flow_id_is_refused(
    settings: Settings, codec: AvroCodec, bad: str,
) -> None:
    io = FakeIO(_link())
    with pytest.raises(ValidationError, match="is not a flow id"):
        await resolve(io, operator_acts_deps(settings, codec), bad, transaction_id="1",
                      operator="alice", reason="r")
    assert io.published == []


async def test_not_posted_needs_a_reason(settings: Settings, codec: AvroCodec) -> None:
    io = FakeIO(_link(), DeliveryRecord(SUBMISSION_VALUE, DELIVERY_HEADERS))
    with pytest.raises(ValidationError, match="--reason"):
        await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id=None,
                      operator="alice", reason=" ")
    assert io.published == []


async def test_a_reason_is_bounded(settings: Settings, codec: AvroCodec) -> None:
    io = FakeIO(_link())
    with pytest.raises(ValidationError, match="longer than"):
        await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id="1",
                      operator="alice", reason="x" * 5000)
    assert io.published == []


async def test_not_posted_is_refused_when_the_submission_is_gone(
    settings: Settings, codec: AvroCodec,
) -> None:
    io = FakeIO(_link(), None)
    with pytest.raises(ValidationError, match=r"no longer on relais\.acts\.delivery"):
        await resolve(io, operator_acts_deps(settings, codec), FLOW, transaction_id=None,
                      operator="alice", reason="not at the TdT")
    assert io.published == []


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, FakeIO]:
    """`relais flows resolve` on a fake journal: the CLI only parses and calls ops.resolve."""
    state = {"io": FakeIO(_link(), DeliveryRecord(SUBMISSION_VALUE, DELIVERY_HEADERS))}

    async def on_fake(settings_: Settings, flow_id: str, **kwargs: Any) -> Resolution:
        return await resolve(state["io"], operator_acts_deps(settings, AvroCodec()), flow_id,
                             **kwargs)

    monkeypatch.setattr(flows_cmd, "load_settings", lambda: settings)
    monkeypatch.setattr(flows_cmd, "resolve_on_kafka", on_fake)
    monkeypatch.setenv("RELAIS_OPERATOR", "carol")
    return state


def test_cli_posted(cli: dict[str, FakeIO]) -> None:
    result = CliRunner().invoke(flows_cmd.app, ["resolve", FLOW, "--posted", "4242"])
    assert result.exit_code == 0, result.output
    assert "posted as transaction 4242" in result.output
    audit = next(o for o in cli["io"].published[0] if o.topic == OPS_AUDIT.name)
    assert _decode(AvroCodec(), audit, "AuditEntry")["operator"] == "carol"


def test_cli_not_posted(cli: dict[str, FakeIO]) -> None:
    result = CliRunner().invoke(flows_cmd.app, ["resolve", FLOW, "--not-posted",
                                                "--reason", "absent from list_actes"])
    assert result.exit_code == 0, result.output
    assert "one fresh post" in result.output


@pytest.mark.parametrize("args", [[], ["--posted", "1", "--not-posted", "--reason", "r"]])
def test_cli_needs_exactly_one_outcome(cli: dict[str, FakeIO], args: list[str]) -> None:
    result = CliRunner().invoke(flows_cmd.app, ["resolve", FLOW, *args])
    assert result.exit_code != 0
    assert "--posted" in result.output
    assert cli["io"].published == []


def test_cli_refuses_a_flow_that_is_not_uncertain(cli: dict[str, FakeIO]) -> None:
    cli["io"] = FakeIO(_link("POSTED", "9"))
    result = CliRunner().invoke(flows_cmd.app, ["resolve", FLOW, "--posted", "4242"])
    assert result.exit_code == 1
    assert "is not uncertain" in result.output
    assert cli["io"].published == []

