"""acts-delivery on fakes: refusal, reconciliation of a POSTING entry, parking as uncertain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.acts.delivery import handle_delivery
from agents.acts.links import ActeLink
from relais.errors import (
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerTimeoutError,
    Reason,
)
from relais.journal.deliver import ReconciliationPendingError
from relais.journal.entry import Step
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.stages.failures import FailureRouter, RetryPolicy
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    PDF,
    SIREN,
    FakeRecord,
    World,
    flow_events,
    flow_of,
    journal_published,
    links_out,
    notifications,
    record_of,
    submission,
)
from topics.acts import ACTS_DELIVERY, ACTS_STATUS

KO_TEXT = "Le numéro de l'acte est déjà utilisé par une autre transaction"


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def _ready(world: World, delivery: Step = "VALIDATED") -> tuple[ActeLink, FakeRecord]:
    document = world.blobs.add(PDF, "deliberation.pdf")
    acte = submission(document={"blob": document, "typology": None})
    flow_id = flow_of("sub-1")
    link = ActeLink(
        flow_id=flow_id, member_siren=SIREN, submission_id="sub-1",
        id_acte="021-217500016-20260302-D2026_042-DE", numero_interne="D2026_042",
        decision_date=acte["decision_date"], nature_code=1, delivery=delivery,
        idempotency_key=f"{flow_id}:post",
    )
    world.links.put_local(link)
    world.keep_classification()
    return link, record_of(world.codec, "ActeSubmission", acte, ACTS_DELIVERY.name, flow_id)


async def test_post_records_the_intent_then_posted_and_first_poll(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world)
    outputs = await handle_delivery(record, world.deps())
    assert len(world.connector.called("post_acte")) == 1
    assert world.connector.called("find_acte") == []
    assert [link.delivery for link in journal_published(world)] == ["POSTING"]
    assert links_out(codec, outputs)[0]["transaction_id"] == "4242"
    assert [n["state"] for n in notifications(codec, outputs)] == ["posted"]
    polls = [out for out in outputs if out.topic == tier("5s").topic.name]
    assert len(polls) == 1 and h.get(polls[0].headers, h.DELAY_TARGET) == ACTS_STATUS.name


async def test_tdt_refusal_rejects_with_the_tdts_own_message(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world)
    world.connector.post_error = PartnerRefusedError(
        KO_TEXT, partner="tdt", reasons=[Reason("acte", "tdt_refused", KO_TEXT)])
    outputs = await handle_delivery(record, world.deps())
    [note] = notifications(codec, outputs)
    assert note["kind"] == "REJECTED" and note["state"] == "rejected"
    assert KO_TEXT in note["message"]
    assert note["reasons"] == [{"field": "acte", "code": "tdt_refused", "message": KO_TEXT}]
    assert [e["state"] for e in flow_events(codec, outputs)] == ["rejected"]


async def test_refusal_without_status_is_still_a_rejection(codec: AvroCodec) -> None:
    # S²LOW refuses with HTTP 200: the stage must not look at a status to decide
    world = World(codec)
    _link, record = _ready(world)
    world.connector.post_error = PartnerRefusedError(KO_TEXT, partner="tdt", status=200)
    outputs = await handle_delivery(record, world.deps())
    assert notifications(codec, outputs)[0]["reasons"][0]["message"] == KO_TEXT


async def test_other_permanent_error_on_post_is_not_a_rejection(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world)
    world.connector.post_error = PartnerPermanentError("HTTP 400", partner="tdt", status=400)
    with pytest.raises(PartnerPermanentError):
        await handle_delivery(record, world.deps())


async def test_posting_found_at_the_tdt_is_not_posted_again(codec: AvroCodec) -> None:
    world = World(codec)
    link, record = _ready(world, delivery="POSTING")
    world.connector.find_answer = "777"
    outputs = await handle_delivery(record, world.deps())
    assert world.connector.called("find_acte") == [("D2026_042", link.decision_date)]
    assert world.connector.called("post_acte") == []
    assert links_out(codec, outputs)[0]["transaction_id"] == "777"
    assert links_out(codec, outputs)[0]["delivery"] == "POSTED"


async def test_posting_proven_absent_is_posted(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world, delivery="POSTING")
    world.connector.find_answer = None
    await handle_delivery(record, world.deps())
    assert len(world.connector.called("post_acte")) == 1


async def test_refusal_after_an_absent_answer_asks_again_and_finds_our_post(
    codec: AvroCodec,
) -> None:
    """Listings are read a few states at a time: an acte moving between two of them can be
    missed, and S²LOW then refuses its number. The second look finds it: posted, not
    rejected."""
    world = World(codec)
    _link, record = _ready(world, delivery="POSTING")
    world.connector.find_answers = [None, "4242"]
    world.connector.post_error = PartnerRefusedError(
        "Un acte portant le même numéro interne existe déjà", partner="tdt")
    outputs = await handle_delivery(record, world.deps())
    assert [c for c, _ in world.connector.calls] == ["find_acte", "post_acte", "find_acte"]
    assert links_out(codec, outputs)[0]["delivery"] == "POSTED"
    assert [n["kind"] for n in notifications(codec, outputs)] == ["STATE_CHANGED"]


async def test_refusal_of_a_first_post_is_not_looked_up(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world)
    world.connector.post_error = PartnerRefusedError("La date est dans le futur", partner="tdt")
    outputs = await handle_delivery(record, world.deps())
    assert [c for c, _ in world.connector.calls] == ["post_acte"]
    assert [n["kind"] for n in notifications(codec, outputs)] == ["REJECTED"]


async def test_posting_tdt_cannot_tell_now_raises_retriable(codec: AvroCodec) -> None:
    world = World(codec)
    link, record = _ready(world, delivery="POSTING")
    world.connector.find_error = PartnerTimeoutError("list_actes timed out", partner="tdt")
    with pytest.raises(ReconciliationPendingError) as caught:
        await handle_delivery(record, world.deps())
    assert caught.value.retriable
    assert world.connector.called("post_acte") == []
    assert world.links.get(link.flow_id) == link  # still POSTING: retried, not parked


async def test_posting_tdt_can_never_tell_parks_uncertain(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world, delivery="POSTING")
    world.connector.find_error = PartnerPermanentError("no listing", partner="tdt")
    outputs = await handle_delivery(record, world.deps())
    assert world.connector.called("post_acte") == []
    [note] = notifications(codec, outputs)
    assert (note["kind"], note["state"]) == ("FAILED", "uncertain")
    assert links_out(codec, outputs)[0]["delivery"] == "UNCERTAIN"
    again = await handle_delivery(record, world.deps())
    assert again == [] and world.connector.called("post_acte") == []


async def test_retry_tiers_spent_dead_letter_with_the_journal_still_posting(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    link, record = _ready(world, delivery="POSTING")
    world.connector.find_error = PartnerTimeoutError("list_actes timed out", partner="tdt")
    with pytest.raises(ReconciliationPendingError) as caught:
        await handle_delivery(record, world.deps())
    router = FailureRouter(stage="acts-delivery", group_id="g", flow_type="acte",
                           dlq_topic="relais.dlq.acts-delivery", codec=codec,
                           policy=RetryPolicy(("30s", "5m")))
    first = router.route(record, caught.value)
    assert [out.topic for out in first] == [tier("30s").topic.name]
    spent = replace(record, headers=(*record.headers, (h.ATTEMPT, b"2")))
    settled = router.route(spent, caught.value)
    # a replay of the dead letter reconciles again (the journal still says POSTING)
    assert [out.topic for out in settled if out.topic.startswith("relais.dlq.")] == [
        "relais.dlq.acts-delivery"]
    assert links_out(codec, settled) == []
    assert world.links.get(link.flow_id) == link


async def test_objet_is_sent_composed(codec: AvroCodec) -> None:
    world = World(codec)
    document = world.blobs.add(PDF, "deliberation.pdf")
    link, _ = _ready(world)
    acte = submission(document={"blob": document, "typology": None},
                      objet="De\u0301libe\u0301ration")
    record = record_of(codec, "ActeSubmission", acte, ACTS_DELIVERY.name, link.flow_id)
    await handle_delivery(record, world.deps())
    [form] = world.connector.called("post_acte")
    assert form.subject == "Délibération"


async def test_refusal_is_journaled_and_a_redelivery_does_nothing(codec: AvroCodec) -> None:
    world = World(codec)
    _link, record = _ready(world)
    world.connector.post_error = PartnerRefusedError(KO_TEXT, partner="tdt")
    outputs = await handle_delivery(record, world.deps())
    assert links_out(codec, outputs)[0]["delivery"] == "REFUSED"
    assert await handle_delivery(record, world.deps()) == []
    assert len(world.connector.called("post_acte")) == 1
