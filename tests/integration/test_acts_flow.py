"""Actes to the prefecture, end to end, on the real broker with the sandbox TdT:
1,000 actes from 20 members end acknowledged or rejected, each member receives exactly
its own notifications, and the TdT receives each acte once."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from aiokafka import TopicPartition

from ops.demo_documents import minimal_pdf
from ops.flows import FlowFilter, latest_states
from ops.members import Registration
from ops.stack import (
    Stack,
    sandbox_base_port,
    sandbox_config,
    sandbox_control_client,
    sandbox_member,
    sandbox_url,
)
from ops.submissions import ActeDraft, publish_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.identifiers import luhn_check_digit
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from tests.integration.conftest import apply_hub_topics, register
from topics import member as member_topics

pytestmark = pytest.mark.integration

MEMBERS = 20
ACTES_PER_MEMBER = 50
TERMINAL = {"acknowledged", "rejected"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sirens(count: int) -> list[str]:
    out = []
    for n in range(count):
        body = f"20{n:06d}"
        out.append(body + str(luhn_check_digit(body)))
    return out


@pytest.fixture(scope="module")
def acts_stack(
    hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[Registration]]]:
    data_dir = tmp_path_factory.mktemp("acts")
    settings = Settings.from_env(
        kafka_bootstrap=hub_kafka_bootstrap, data_dir=data_dir,
        app_id=f"relais-acts-{uuid.uuid4().hex[:8]}", sandbox_tdt_port=sandbox_base_port(),
        api_port=free_port(),
    )
    registrations = [sandbox_member(settings, siren, f"Commune {i}", "021")
                     for i, siren in enumerate(sirens(MEMBERS))]
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, registrations))
    stack = Stack(settings, data_dir / "logs", extra_env={
        "RELAIS_PREFECTURE_POLL_SECONDS": "2", "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    })
    try:
        stack.start_sandbox(sandbox_config(
            registrations,
            faults={"anomaly_rate": 0.1, "prefecture_message_rate": 0.1,
                    "duplicate_rate": 0.2, "out_of_order": 0.2},
        ))
        stack.start_worker()
        yield stack, registrations
    finally:
        stack.stop()


def _drafts(siren: str, blob: Any) -> list[ActeDraft]:
    return [
        ActeDraft(
            submission_id=f"{siren}-{i}", member_siren=siren, nature_code=1 + i % 6,
            matieres=(1 + i % 9, 1), numero_interne=f"T{i:04d}", decision_date=date(2026, 11, 2),
            objet=f"Acte de test numéro {i}", document=blob,
        )
        for i in range(ACTES_PER_MEMBER)
    ]


async def _notifications(bootstrap: str, siren: str) -> list[dict[str, Any]]:
    codec = AvroCodec()
    tp = TopicPartition(member_topics.notifications(siren).name, 0)
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [codec.decode(r.value, expected="Notification").record for r in records]
        return out
    finally:
        await consumer.stop()


async def test_thousand_actes_from_twenty_members(
    acts_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = acts_stack
    settings = stack.settings
    store = FilesystemBlobStore(settings.blob_dir)
    blob = await store.put_bytes(minimal_pdf("acte"), media_type="application/pdf",
                                 filename="acte.pdf")
    for registration in registrations:  # each member references it: each owns it
        await store.grant(blob.sha256, registration.member.siren)
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    expected: dict[str, str] = {}
    started = time.monotonic()
    try:
        for registration in registrations:
            siren = registration.member.siren
            for draft in _drafts(siren, blob):
                await publish_acte(publisher, draft)
                expected[flow_id_for(siren, draft.submission_id)] = siren
    finally:
        await publisher.stop()
    published = time.monotonic() - started

    states: dict[str, str] = {}
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        found = await latest_states(settings.bootstrap_servers, FlowFilter(flow_type="acte"))
        states = {s["flow_id"]: s["state"] for s in found if s["flow_id"] in expected}
        if len(states) == len(expected) and set(states.values()) <= TERMINAL:
            break
        await asyncio.sleep(3)
    elapsed = time.monotonic() - started
    print(f"\n1000 actes: published in {published:.1f} s, all terminal after {elapsed:.1f} s "
          f"({len(expected) / elapsed:.1f} actes/s end to end)")
    outcome = Counter(states.values())
    assert len(states) == len(expected), f"{len(expected) - len(states)} flows have no state"
    assert set(outcome) <= TERMINAL, outcome
    assert outcome["acknowledged"] > 0 and outcome["rejected"] > 0, outcome

    async with sandbox_control_client(settings) as client:
        stats = (await client.get(f"{sandbox_url(settings)}/sandbox/stats")).json()
    assert stats["transactions_created"] == len(expected)
    assert stats["duplicate_posts"] == 0
    assert stats["rejected_posts"] == 0

    latencies: list[float] = []
    for registration in registrations:
        siren = registration.member.siren
        notes = await _notifications(settings.bootstrap_servers, siren)
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
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    try:
        await publisher.publish(
            member_topics.submissions(record["member_siren"]).name,
            key=record["submission_id"], schema_name="ActeFollowUp", record=record,
            headers=EventHeaders.new(source="/tests", type="fr.relais.acts.ActeFollowUp",
                                     subject=record["submission_id"], flow_id=None),
        )
    finally:
        await publisher.stop()


async def test_member_cancels_an_acte_and_replies_to_the_prefecture(
    acts_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = acts_stack
    settings = stack.settings
    siren = registrations[0].member.siren
    notes = await _notifications(settings.bootstrap_servers, siren)
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
    deadline = time.monotonic() + 90
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        found = await latest_states(settings.bootstrap_servers, FlowFilter(member=siren))
        states = {s["flow_id"]: s["state"] for s in found}
        sent = [f for f, s in states.items() if s == "sent"]
        if states.get(cancelled_flow) == "cancelled" and len(sent) == 1 + len(replies):
            break
        await asyncio.sleep(2)
    assert states.get(cancelled_flow) == "cancelled"
    followups = {f: s for f, s in states.items()
                 if f in {flow_id_for(siren, f"cancel-{to_cancel}")}
                 | {flow_id_for(siren, f"reply-{n['submission_id']}") for n in letters[:1]}}
    assert set(followups.values()) == {"sent"}, followups
    async with sandbox_control_client(settings) as client:
        stats = (await client.get(f"{sandbox_url(settings)}/sandbox/stats")).json()
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
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    try:
        # "T0000" was posted by the first test with 2026-11-02; same number, new date
        await publish_acte(publisher, ActeDraft(
            submission_id=f"{siren}-reused-number", member_siren=siren, nature_code=1,
            matieres=(1, 1), numero_interne="T0000", decision_date=date(2026, 11, 3),
            objet="Acte au numéro déjà utilisé", document=blob,
        ))
    finally:
        await publisher.stop()
    reused = flow_id_for(siren, f"{siren}-reused-number")
    deadline = time.monotonic() + 90
    refusal: dict[str, Any] | None = None
    while time.monotonic() < deadline and refusal is None:
        notes = await _notifications(settings.bootstrap_servers, siren)
        refusal = next((n for n in notes if n["flow_id"] == reused
                        and n["kind"] == "REJECTED"), None)
        await asyncio.sleep(2)
    assert refusal is not None, "the TdT's refusal never reached the member"
    assert refusal["state"] == "rejected"
    [reason] = refusal["reasons"]
    assert reason["code"] == "tdt_refused"
    assert "numéro" in reason["message"] and "existe déjà" in reason["message"], reason
    assert reason["message"] in refusal["message"]

    notes = await _notifications(settings.bootstrap_servers, siren)
    acknowledged = {n["flow_id"] for n in notes if n["kind"] == "STATE_CHANGED"
                    and n["state"] == "acknowledged" and "child_event" not in n["details"]}
    stamped: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        notes = await _notifications(settings.bootstrap_servers, siren)
        stamped = [n for n in notes if n["kind"] == "PARTNER_MESSAGE"
                   and n["details"].get("document") == "stamped_acte"]
        if {n["flow_id"] for n in stamped} >= acknowledged:
            break
        await asyncio.sleep(2)
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
        async with sandbox_control_client(settings) as client:
            stats = (await client.get(f"{sandbox_url(settings)}/sandbox/stats")).json()
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
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    try:
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
    finally:
        await publisher.stop()
    went_on = flow_id_for(siren, f"{siren}-contract-open")
    stopped = flow_id_for(siren, f"{siren}-contract-closed")

    def outcome(notes: list[dict[str, Any]], flow: str) -> dict[str, Any] | None:
        return next((n for n in notes if n["flow_id"] == flow
                     and n["state"] in ("validated", "rejected")), None)

    deadline = time.monotonic() + 90
    notes: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        notes = await _notifications(settings.bootstrap_servers, siren)
        if outcome(notes, went_on) and outcome(notes, stopped):
            break
        await asyncio.sleep(2)
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
