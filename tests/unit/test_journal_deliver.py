"""deliver_exactly_once on fakes: the intent before the call, reconciliation of a
POSTING entry, refusals, and a crash between the call and the outcome."""

from __future__ import annotations

from typing import Any

import pytest

from relais.errors import PartnerPermanentError, PartnerRefusedError, PartnerTransientError
from relais.journal.deliver import (
    AlreadyDone,
    Delivered,
    Journal,
    ReconciliationPendingError,
    Refused,
    Uncertain,
    deliver_exactly_once,
    entry_outbound,
)
from relais.journal.entry import JournalEntry, Step
from relais.journal.view import JournalIndex
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.journal import DELIVERY_JOURNAL

ACCOUNT = "https://partner.example.org"


class Timeline:
    """One ordered log of what happened: publications and partner calls."""

    def __init__(self) -> None:
        self.events: list[str] = []


class FakePublisher:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, topic: str, *, key: str | bytes | None, schema_name: str,
                      record: dict[str, Any], headers: EventHeaders) -> None:
        self.published.append((topic, record))
        self.timeline.events.append(f"publish {record['step']}")


class FakeView:
    """The journal view's local side: latest entry by flow, with the real index."""

    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}
        self.index = JournalIndex({"pes": ("bordereau",)})

    def put_local(self, entry: JournalEntry) -> None:
        self.entries[entry.flow_id] = entry
        self.index.update(entry.flow_id, entry)


class Partner:
    """A partner that creates ``ref`` on each call unless told otherwise."""

    def __init__(self, timeline: Timeline, *, holds: str | None = None) -> None:
        self.timeline = timeline
        self.holds = holds  # what a reconcile finds
        self.calls = 0
        self.reconciles = 0
        self.call_error: Exception | None = None
        self.reconcile_errors: list[Exception] = []

    async def call(self) -> str:
        self.calls += 1
        self.timeline.events.append("call")
        if self.call_error is not None:
            raise self.call_error
        self.holds = f"ref-{self.calls}"
        return self.holds

    async def reconcile(self) -> str | None:
        self.reconciles += 1
        self.timeline.events.append("reconcile")
        if self.reconcile_errors:
            raise self.reconcile_errors.pop(0)
        return self.holds


def _entry(step: Step = "VALIDATED") -> JournalEntry:
    return JournalEntry(flow_id="217500016-flow-1", flow_type="pes", member_siren="217500016",
                        partner="helios", step=step, idempotency_key="217500016-flow-1:post",
                        account=ACCOUNT, keys={"bordereau": "B-1"})


def _world(holds: str | None = None) -> tuple[Journal, FakeView, FakePublisher, Partner]:
    timeline = Timeline()
    view, publisher = FakeView(), FakePublisher(timeline)
    return (Journal(view=view, publisher=publisher, stage="test-delivery"), view, publisher,
            Partner(timeline, holds=holds))


async def _deliver(entry: JournalEntry, journal: Journal, partner: Partner) -> Any:
    return await deliver_exactly_once(entry, journal=journal, call=partner.call,
                                      reconcile=partner.reconcile)


async def test_the_intent_is_published_before_the_call() -> None:
    journal, view, publisher, partner = _world()
    outcome = await _deliver(_entry(), journal, partner)
    assert partner.timeline.events == ["publish POSTING", "call"]
    assert [topic for topic, _ in publisher.published] == [DELIVERY_JOURNAL.name]
    assert isinstance(outcome, Delivered) and not outcome.reconciled
    assert (outcome.entry.step, outcome.entry.partner_ref) == ("POSTED", "ref-1")
    assert view.entries[outcome.entry.flow_id].step == "POSTED"
    assert view.index.flow_of_partner_ref(ACCOUNT, "ref-1") == outcome.entry.flow_id


@pytest.mark.parametrize("step", ["POSTED", "UNCERTAIN", "REFUSED"])
async def test_a_settled_entry_sends_nothing(step: Step) -> None:
    journal, _view, publisher, partner = _world()
    outcome = await _deliver(_entry(step), journal, partner)
    assert isinstance(outcome, AlreadyDone) and outcome.entry.step == step
    assert partner.timeline.events == [] and publisher.published == []


async def test_posting_found_at_the_partner_is_posted_without_a_call() -> None:
    journal, view, publisher, partner = _world(holds="ref-earlier")
    outcome = await _deliver(_entry("POSTING"), journal, partner)
    assert isinstance(outcome, Delivered) and outcome.reconciled
    assert outcome.entry.partner_ref == "ref-earlier"
    assert partner.calls == 0 and publisher.published == []
    assert view.entries[outcome.entry.flow_id].step == "POSTED"


async def test_posting_proved_absent_is_posted_once() -> None:
    journal, _view, _publisher, partner = _world(holds=None)
    outcome = await _deliver(_entry("POSTING"), journal, partner)
    assert partner.timeline.events == ["reconcile", "publish POSTING", "call"]
    assert isinstance(outcome, Delivered) and outcome.entry.partner_ref == "ref-1"


async def test_posting_the_partner_cannot_tell_now_is_retriable_and_not_called() -> None:
    journal, view, publisher, partner = _world()
    partner.reconcile_errors = [PartnerTransientError("listing timed out", partner="helios")]
    with pytest.raises(ReconciliationPendingError) as pending:
        await _deliver(_entry("POSTING"), journal, partner)
    assert pending.value.retriable and pending.value.code == "reconciliation_pending"
    assert partner.calls == 0 and publisher.published == [] and view.entries == {}


async def test_posting_the_partner_can_never_tell_is_uncertain_and_not_called() -> None:
    journal, view, _publisher, partner = _world()
    partner.reconcile_errors = [PartnerPermanentError("no listing", partner="helios")]
    outcome = await _deliver(_entry("POSTING"), journal, partner)
    assert isinstance(outcome, Uncertain) and outcome.why == "no listing"
    assert partner.calls == 0
    assert view.entries[outcome.entry.flow_id].step == "UNCERTAIN"


async def test_a_refusal_records_refused_and_frees_the_keys() -> None:
    journal, view, _publisher, partner = _world()
    view.put_local(_entry())
    assert view.index.flow_of("217500016", "bordereau", "B-1") == _entry().flow_id
    partner.call_error = PartnerRefusedError("bordereau already known", partner="helios")
    outcome = await _deliver(_entry(), journal, partner)
    assert isinstance(outcome, Refused) and outcome.error.message == "bordereau already known"
    assert view.entries[outcome.entry.flow_id].step == "REFUSED"
    assert view.index.flow_of("217500016", "bordereau", "B-1") is None
    assert partner.reconciles == 0  # a first attempt's refusal is the partner's answer


async def test_a_refusal_after_a_possibly_posted_attempt_reconciles_again() -> None:
    journal, _view, _publisher, partner = _world(holds=None)
    # the first listing missed it, the partner then refuses the duplicate: ask again
    partner.call_error = PartnerRefusedError("duplicate", partner="helios")

    async def reconcile() -> str | None:
        partner.reconciles += 1
        return None if partner.reconciles == 1 else "ref-earlier"

    outcome = await deliver_exactly_once(_entry("POSTING"), journal=journal, call=partner.call,
                                         reconcile=reconcile)
    assert isinstance(outcome, Delivered) and outcome.reconciled
    assert outcome.entry.partner_ref == "ref-earlier" and partner.reconciles == 2


async def test_a_crash_between_call_and_outcome_is_reconciled_never_called_twice() -> None:
    journal, view, _publisher, partner = _world()

    async def call_then_crash() -> str:
        await partner.call()  # the partner created it ...
        raise RuntimeError("worker killed")  # ... and the outcome was never recorded

    with pytest.raises(RuntimeError):
        await deliver_exactly_once(_entry(), journal=journal, call=call_then_crash,
                                   reconcile=partner.reconcile)
    seen = view.entries[_entry().flow_id]
    assert seen.step == "POSTING"  # what the retried record finds
    outcome = await _deliver(seen, journal, partner)
    assert isinstance(outcome, Delivered) and outcome.reconciled
    assert outcome.entry.partner_ref == "ref-1"
    assert partner.calls == 1


def test_the_outcome_record_round_trips_through_avro() -> None:
    codec = AvroCodec()
    posted = _entry().moved("POSTED", partner_ref="ref-1")
    out = entry_outbound(codec, posted, stage="test-delivery", parent=None)
    assert (out.topic, out.key) == (DELIVERY_JOURNAL.name, b"217500016-flow-1/helios")
    back = JournalEntry.from_record(codec.decode(out.value or b"").record)
    assert back.to_record() | {"updated_at": None} == posted.to_record() | {"updated_at": None}
    again = entry_outbound(codec, posted, stage="test-delivery", parent=None)
    other = entry_outbound(codec, posted, stage="operator", parent=None,
                           event_parts=("resolved",))
    ids = [dict(o.headers)["ce_id"] for o in (out, again, other)]
    assert ids[0] == ids[1] != ids[2]  # one id per step, told apart for corrections
