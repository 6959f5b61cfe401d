"""Actes to the prefecture, end to end, on the real broker with the sandbox TdT:
1,000 actes from 20 members end acknowledged or rejected, each member receives exactly
its own notifications, and the TdT receives each acte once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from ops.demo_documents import minimal_pdf
from ops.flows import FlowFilter
from ops.members import Registration
from ops.stack import Stack, sandbox_config, sandbox_member
from ops.submissions import ActeDraft, publish_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.settings import Settings
from relais.wire.headers import EventHeaders
from tests.integration import stacks
from tests.integration.conftest import register
from topics import member as member_topics

pytestmark = pytest.mark.integration

MEMBERS = 20
ACTES_PER_MEMBER = 50
TERMINAL = {"acknowledged", "rejected"}


@pytest.fixture(scope="module")
def acts_stack(
    hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[Registration]]]:
    settings = stacks.stack_settings(hub_kafka_bootstrap, tmp_path_factory.mktemp("acts"),
                                     "acts")
    registrations = [sandbox_member(settings, siren, f"Commune {i}", "021")
                     for i, siren in enumerate(stacks.sirens(MEMBERS))]
    tdt = sandbox_config(registrations, faults={
        "anomaly_rate": 0.1, "prefecture_message_rate": 0.1, "duplicate_rate": 0.2,
        "out_of_order": 0.2})
    with stacks.running_stack(settings, registrations, tdt, extra_env={
        "RELAIS_PREFECTURE_POLL_SECONDS": "2", "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    }) as stack:
        yield stack, registrations


def _drafts(siren: str, blob: Any) -> list[ActeDraft]:
    return [
        ActeDraft(
            submission_id=f"{siren}-{i}", member_siren=siren, nature_code=1 + i % 6,
            matieres=(1 + i % 9, 1), numero_interne=f"T{i:04d}", decision_date=date(2026, 11, 2),
            objet=f"Acte de test numéro {i}", document=blob,
        )
        for i in range(ACTES_PER_MEMBER)
    ]


async def test_thousand_actes_from_twenty_members(
    acts_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = acts_stack
    settings = stack.settings
    blob = await stacks.shared_acte_blob(settings, registrations)
    started = time.monotonic()
    expected = await stacks.publish_actes(
        settings, [d for r in registrations for d in _drafts(r.member.siren, blob)])
    published = time.monotonic() - started

    states = await stacks.wait_for_states(
        settings, FlowFilter(flow_type="acte"), stacks.settled_in(expected, TERMINAL),
        timeout=420, every=3, flows=expected)
    elapsed = time.monotonic() - started
    print(f"\n1000 actes: published in {published:.1f} s, all terminal after {elapsed:.1f} s "
          f"({len(expected) / elapsed:.1f} actes/s end to end)")
    outcome = Counter(states.values())
    assert len(states) == len(expected), f"{len(expected) - len(states)} flows have no state"
    assert set(outcome) <= TERMINAL, outcome
    assert outcome["acknowledged"] > 0 and outcome["rejected"] > 0, outcome

    stats = await stacks.tdt_stats(settings)
    assert stats["transactions_created"] == len(expected)
    assert stats["duplicate_posts"] == 0
    assert stats["rejected_posts"] == 0

    latencies: list[float] = []
    for registration in registrations:
        siren = registration.member.siren
        notes = await stacks.notifications(settings.bootstrap_servers, siren)
        received = {n["flow_id"]: n["occurred_at"] for n in notes if n["kind"] == "ACCEPTED"}
        latencies += [(n["occurred_at"] - received[n["flow_id"]]).total_seconds()
                      for n in notes if n["state"] == "acknowledged"
                      and n["kind"] == "STATE_CHANGED" and n["flow_id"] in received]
        mine = {flow for flow, owner in expected.items() if owner == siren}
        assert {n["member_siren"] for n in notes} == {siren}
        assert {n["flow_id"] for n in notes} == mine
        ids = Counter(n["event_id"] for n in notes)
        assert max(ids.values()) == 1, "a notification was delivered twice"
        finals = Counter(n["flow_id"] for n in notes if n["state"] in TERMINAL
                         and n["kind"] in ("STATE_CHANGED", "REJECTED"))
        assert set(finals) == mine and max(finals.values()) == 1
        for note in notes:
            if note["kind"] == "REJECTED":
                assert note["reasons"][0]["code"].startswith("anomalie_")
    latencies.sort()
    print(f"received → acknowledged: median {latencies[len(latencies) // 2]:.1f} s, "
          f"p95 {latencies[int(len(latencies) * 0.95)]:.1f} s over {len(latencies)} actes "
          "(first status poll after 5 s; the sandbox acknowledges after 1.5 s)")


async def _publish_followup(settings: Settings, record: dict[str, Any]) -> None:
    async with stacks.publishing(settings) as publisher:
        await publisher.publish(
            member_topics.submissions(record["member_siren"]).name,
            key=record["submission_id"], schema_name="ActeFollowUp", record=record,
            headers=EventHeaders.new(source="/tests", type="fr.relais.acts.ActeFollowUp",
                                     subject=record["submission_id"], flow_id=None),
        )


async def test_member_cancels_an_acte_and_replies_to_the_prefecture(
    acts_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = acts_stack
    settings = stack.settings
    siren = registrations[0].member.siren
    notes = await stacks.notifications(settings.bootstrap_servers, siren)
    letters = [n for n in notes if n["kind"] == "PARTNER_MESSAGE"
               and n["details"].get("type_code") in ("2-1", "3-1", "4-1")]
    acknowledged = [n for n in notes if n["state"] == "acknowledged"
                    and n["kind"] == "STATE_CHANGED" and "child_event" not in n["details"]]
    assert acknowledged, "the first test leaves acknowledged actes"
    to_cancel = acknowledged[0]["submission_id"]
    store = FilesystemBlobStore(settings.blob_dir)
    letter_blob = await store.put_bytes(minimal_pdf("reply"), media_type="application/pdf",
                                        filename="reponse.pdf", owner=siren)
    await _publish_followup(settings, {
        "submission_id": f"cancel-{to_cancel}", "member_siren": siren,
        "acte_submission_id": to_cancel, "kind": "CANCELLATION", "reply_type": None,
        "prefecture_document_id": None, "description": None, "documents": [],
    })
    replies = []
    for letter in letters[:1]:
        reply_type = {"2-1": "2-2", "3-1": "3-4", "4-1": "4-4"}[letter["details"]["type_code"]]
        replies.append(letter["flow_id"])
        await _publish_followup(settings, {
            "submission_id": f"reply-{letter['submission_id']}", "member_siren": siren,
            "acte_submission_id": letter["submission_id"], "kind": "REPLY",
            "reply_type": reply_type,
            "prefecture_document_id": letter["details"]["tdt_document_id"],
            "description": None, "documents": [letter_blob.to_dict()],
        })
    cancelled_flow = flow_id_for(siren, to_cancel)

    def followed_up(states: dict[str, str]) -> bool:
        sent = [f for f, s in states.items() if s == "sent"]
        return states.get(cancelled_flow) == "cancelled" and len(sent) == 1 + len(replies)

    states = await stacks.wait_for_states(settings, FlowFilter(member=siren), followed_up,
                                          timeout=90, every=2)
    assert states.get(cancelled_flow) == "cancelled"
    followups = {f: s for f, s in states.items()
                 if f in {flow_id_for(siren, f"cancel-{to_cancel}")}
                 | {flow_id_for(siren, f"reply-{n['submission_id']}") for n in letters[:1]}}
    assert set(followups.values()) == {"sent"}, followups
    stats = await stacks.tdt_stats(settings)
    assert stats["cancellations"] == 1
    assert stats["replies"] == len(replies)


async def test_tdt_refusal_stamped_acte_and_prefecture_messages_reach_the_member(
    acts_stack: tuple[Stack, list[Registration]],
) -> None:
    """Over mTLS with the S²LOW-shaped sandbox: a number S²LOW already holds (another
    decision date, so another IDActe Relais cannot refuse itself) is rejected with the TdT's
    own words; an acknowledged acte's stamped PDF reaches the member as a blob; prefecture
    messages reached through the download redirect were delivered and marked read."""
    stack, registrations = acts_stack
    settings = stack.settings
    siren = registrations[1].member.siren
    store = FilesystemBlobStore(settings.blob_dir)
    blob = await store.put_bytes(minimal_pdf("refusal"), media_type="application/pdf",
                                 filename="acte.pdf", owner=siren)
    async with stacks.publishing(settings) as publisher:
        # "T0000" was posted by the first test with 2026-11-02; same number, new date
        await publish_acte(publisher, ActeDraft(
            submission_id=f"{siren}-reused-number", member_siren=siren, nature_code=1,
            matieres=(1, 1), numero_interne="T0000", decision_date=date(2026, 11, 3),
            objet="Acte au numéro déjà utilisé", document=blob,
        ))
    reused = flow_id_for(siren, f"{siren}-reused-number")
    refusal = await stacks.wait_for_refusal(settings, siren, reused, timeout=90, every=2)
    assert refusal is not None, "the TdT's refusal never reached the member"
    assert refusal["state"] == "rejected"
    [reason] = refusal["reasons"]
    assert reason["code"] == "tdt_refused"
    assert "numéro" in reason["message"] and "existe déjà" in reason["message"], reason
    assert reason["message"] in refusal["message"]

    notes = await stacks.notifications(settings.bootstrap_servers, siren)
    acknowledged = {n["flow_id"] for n in notes if n["kind"] == "STATE_CHANGED"
                    and n["state"] == "acknowledged" and "child_event" not in n["details"]}

    def stamped_in(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [n for n in notes if n["kind"] == "PARTNER_MESSAGE"
                and n["details"].get("document") == "stamped_acte"]

    stamped = stamped_in(await stacks.wait_for_notes(
        settings, siren, lambda notes: {n["flow_id"] for n in stamped_in(notes)} >= acknowledged,
        timeout=60, every=2))
    assert {n["flow_id"] for n in stamped} == acknowledged
    assert Counter(n["flow_id"] for n in stamped).most_common(1)[0][1] == 1
    for note in stamped[:5]:
        [document] = note["documents"]
        assert document["media_type"] == "application/pdf"
        assert await store.owned_by(document["sha256"], siren)
        head = b"".join([chunk async for chunk in store.open(document["sha256"])])[:5]
        assert head == b"%PDF-"

    deadline = time.monotonic() + 60
    while True:  # messages the sandbox wrote last are fetched at the watcher's next round
        stats = await stacks.tdt_stats(settings)
        if (stats["documents_marked_read"] >= stats["prefecture_documents"]
                or time.monotonic() > deadline):
            break
        await asyncio.sleep(2)
    print(f"\nprefecture messages {stats['prefecture_documents']}, fetched through the "
          f"redirect {stats['documents_fetched']}, marked read {stats['documents_marked_read']}, "
          f"stamped actes fetched {stats['stamped_fetched']}")
    assert stats["prefecture_documents"] > 0
    assert stats["documents_fetched"] >= stats["prefecture_documents"] > 0
    assert stats["documents_marked_read"] >= stats["prefecture_documents"]
    assert stats["stamped_fetched"] >= len(acknowledged)


async def test_a_member_refusing_closed_contractors_parks_its_contracts_until_sirene_answers(
    acts_stack: tuple[Stack, list[Registration]],
) -> None:
    """A member registered with ``contractor_check=refuse`` (docs/registries.md) submits two
    contracts whose contractors the hub's cache does not hold yet: each is parked on the
    5 s delay tier back to acts-validation (one notice each), their look-ups go to the
    sandbox Sirene, and on its return the one naming an open establishment is validated,
    the one naming a closed establishment rejected with ``contractor_closed``."""
    from dataclasses import replace

    import httpx

    from ops.stack import registries_url, sandbox_tls_material
    from ops.submissions import submission_headers

    stack, registrations = acts_stack
    settings = stack.settings
    last = registrations[-1]
    siren = last.member.siren
    refusing = replace(last, member=replace(last.member, contractor_check="refuse"))
    await register(settings, [refusing])
    url = registries_url(settings, stack.registries_port, tls=stack.tls)
    verify: Any = str(sandbox_tls_material(settings).ca_file) if stack.tls else True
    async with httpx.AsyncClient(verify=verify, timeout=10) as client:
        numbers = (await client.get(f"{url}/sandbox/numbers")).json()
    opened, closed = numbers["open_establishments"][0], numbers["closed_establishments"][0]
    await asyncio.sleep(5)  # the worker's member directory sees the new setting
    store = FilesystemBlobStore(settings.blob_dir)
    blob = await store.put_bytes(minimal_pdf("contrat"), media_type="application/pdf",
                                 filename="contrat.pdf", owner=siren)
    async with stacks.publishing(settings) as publisher:
        for name, contractor in (("open", opened), ("closed", closed)):
            draft = ActeDraft(
                submission_id=f"{siren}-contract-{name}", member_siren=siren, nature_code=4,
                matieres=(1, 1), numero_interne=f"C{name.upper()}", decision_date=date(2026, 11, 2),
                objet=f"Marché avec un titulaire {name}", document=blob,
            )
            await publisher.publish(
                member_topics.submissions(siren).name, key=draft.submission_id,
                schema_name="ActeSubmission",
                record={**draft.to_record(), "contractor_sirets": [contractor]},
                headers=submission_headers(publisher, siren, draft.submission_id))
    went_on = flow_id_for(siren, f"{siren}-contract-open")
    stopped = flow_id_for(siren, f"{siren}-contract-closed")

    def outcome(notes: list[dict[str, Any]], flow: str) -> dict[str, Any] | None:
        return next((n for n in notes if n["flow_id"] == flow
                     and n["state"] in ("validated", "rejected")), None)

    notes = await stacks.wait_for_notes(
        settings, siren, lambda notes: bool(outcome(notes, went_on) and outcome(notes, stopped)),
        timeout=90, every=2)
    passed, refused = outcome(notes, went_on), outcome(notes, stopped)
    assert passed is not None and passed["state"] == "validated", passed
    assert passed["details"]["contractors_checked"] == "1"
    assert refused is not None and refused["state"] == "rejected", refused
    assert [(r["field"], r["code"]) for r in refused["reasons"]] == [
        ("contractor_sirets[0]", "contractor_closed")]
    for flow, contractor in ((went_on, opened), (stopped, closed)):
        notices = [n for n in notes if n["flow_id"] == flow
                   and n["details"].get("child_event") == "contractor_check"]
        assert len(notices) == 1, notices  # told once that it waits, however many parkings
        assert notices[0]["state"] == "received"
        assert notices[0]["details"]["pending_contractors"] == contractor
    answered = {n["partner_ref"] for n in notes if n["flow_type"] == "registry"
                and n["state"] == "answered"}
    assert answered == {opened, closed}
