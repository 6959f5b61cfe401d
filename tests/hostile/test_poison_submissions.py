"""A member's compromised back-office against the ingress (issue 13, F1, F2 and F8).

Member B publishes, on its own submissions topic, the records the attacker used:
an acte whose ``decision_date`` is too large for a date (an ``OverflowError`` in
decoding), an acte whose blob ``sha256`` is not 64 hex digits (a ``ValidationError``
from the blob store), and undecodable bytes, each carrying a non-numeric
``relais_attempt`` and A's ``relais_flow_id``/``relais_member`` (and a non-UTF-8
header). Before the fix the failure router raised on them, the batch was retried
forever and the ingress stalled for every member; and A's acknowledged flow
became *failed*, with a FAILED notification to A.

Expected now: B gets one REJECTED per record naming the field; A's flow and
notifications are untouched; resending A's acknowledged submission leaves it
acknowledged; the next valid submission of each member completes; nothing of B
is dead-lettered. A record on the topic of a member that is not registered is
dead-lettered with its context, and ``relais health`` then exits 1 naming the
ingress.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from agents.acts.machines import BY_TYPE
from ops.flows import flow_history
from ops.kafka.broker import LocalBroker
from ops.submissions import ActeDraft, publish_acte
from ops.topics import apply_topics
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.kafka import clients as kafka_clients
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.stages import headers as h
from relais.wire.avro_codec import SINGLE_OBJECT_MARKER, AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from tests.faults.conftest import (
    FaultHub,
    dead_letters,
    drafts,
    flow_of,
    notifications,
    sirens,
    start_fault_hub,
    wait_for_states,
)
from topics import member as member_topics

pytestmark = [pytest.mark.integration, pytest.mark.hostile]

ENV = {
    "RELAIS_RETRY_TIERS": "5s,5s,5s",
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "5",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(fault_broker: LocalBroker) -> LocalBroker:
    """A broker of the module's own: its hub reads every submissions topic by pattern."""
    return fault_broker


@pytest.fixture(scope="module")
def hub(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultHub]:
    running = start_fault_hub(broker, tmp_path_factory, prefix="44", members=2, env=ENV)
    try:
        store = FilesystemBlobStore(running.settings.blob_dir)
        for siren in running.sirens:  # each member references the PDF as its own upload
            asyncio.run(store.grant(running.blob.sha256, siren))
        yield running
    finally:
        running.close()


def overflowing_date(codec: AvroCodec, draft: ActeDraft) -> bytes:
    """``draft`` with decision_date = 2**31-1 days after 1970: a valid Avro int, too large
    for a date. A logical type is not part of the schema fingerprint, so the reader takes
    it for a genuine ActeSubmission."""
    schema = codec.catalog.current("ActeSubmission")
    record = {**draft.to_record(), "decision_date": 2**31 - 1}
    body = io.BytesIO()
    schemaless_writer(body, schema.plain, record)
    return SINGLE_OBJECT_MARKER + schema.fingerprint + body.getvalue()


def bad_digest(codec: AvroCodec, draft: ActeDraft) -> bytes:
    record = draft.to_record()
    record["document"]["blob"]["sha256"] = "not-a-digest/../../etc/passwd"
    return codec.encode("ActeSubmission", record)


async def publish_as_attacker(
    bootstrap: str, siren: str, records: list[tuple[str, bytes]], forged: list[tuple[str, bytes]]
) -> None:
    producer = kafka_clients.producer(bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(member_topics.submissions(siren).name, value,
                                         key=key.encode(), headers=forged)
    finally:
        await producer.stop()


def cli(hub: FaultHub, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **hub.stack.env(), "RELAIS_LOG_FORMAT": "console"}
    return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def by_flow(notes: list[dict[str, Any]], flow: str) -> list[dict[str, Any]]:
    return [n for n in notes if n["flow_id"] == flow]


async def test_poison_records_of_one_member_touch_nobody_else(hub: FaultHub) -> None:
    started = time.monotonic()
    a, b = hub.sirens
    codec = AvroCodec()
    publisher = Publisher(hub.bootstrap, codec, client_id="hostile-tests")
    await publisher.start()
    try:
        # A's acte is acknowledged first: the flow the attacker aims at.
        first_a = drafts(a, hub.blob, 1, tag="A")[0]
        await publish_acte(publisher, first_a)
        target = flow_of(first_a)
        states, _ = await wait_for_states(
            hub.bootstrap, {target}, lambda s, _: s.get(target) == "acknowledged", timeout=120,
            every=1)
        assert states.get(target) == "acknowledged", states
        notes_a_before = by_flow(await notifications(hub.bootstrap, a), target)

        # B's poison, every record carrying A's internal headers and garbage ones.
        template = drafts(b, hub.blob, 1, tag="P")[0]
        forged = [(FLOW_ID_HEADER, target.encode()), (h.MEMBER, a.encode()),
                  (h.ATTEMPT, b"not-a-number"), (h.FIRST_FAILURE_AT, b"\xff\xfe"),
                  (h.DELAY_TARGET, b"relais.acts.delivery"), ("x-garbage", b"\xc3\x28\xff")]
        poison = {
            "poison-date": overflowing_date(codec, replace(template, submission_id="poison-date")),
            "poison-sha": bad_digest(codec, replace(template, submission_id="poison-sha")),
            "poison-bytes": b"\x00\xffnot avro at all",
        }
        await publish_as_attacker(hub.bootstrap, b, list(poison.items()), forged)

        # Then: A resends its acknowledged acte, and each member's next valid acte.
        await publish_acte(publisher, first_a)
        next_a = drafts(a, hub.blob, 1, start=1, tag="A")[0]
        next_b = drafts(b, hub.blob, 1, tag="B")[0]
        await publish_acte(publisher, next_a)
        await publish_acte(publisher, next_b)
    finally:
        await publisher.stop()

    poisoned = {key: flow_id_for(b, key) for key in poison}
    valid = {target, flow_of(next_a), flow_of(next_b)}

    def done(states: dict[str, str], _: set[str]) -> bool:
        return (all(states.get(f) == "acknowledged" for f in valid)
                and all(states.get(f) == "rejected" for f in poisoned.values()))

    states, _ = await wait_for_states(hub.bootstrap, {*valid, *poisoned.values()}, done,
                                      timeout=150, every=1, stalled_after=60)
    elapsed = time.monotonic() - started
    assert done(states, set()), states

    # B is told, about each record, which field and why.
    notes_b = await notifications(hub.bootstrap, b)
    reasons = {}
    for key, flow in poisoned.items():
        (note,) = by_flow(notes_b, flow)
        assert note["kind"] == "REJECTED", note
        reasons[key] = [(r["field"], r["code"]) for r in note["reasons"]]
    assert reasons == {
        "poison-date": [("decision_date", "out_of_range")],
        "poison-sha": [("document.blob.sha256", "invalid_sha256")],
        "poison-bytes": [("value", "value_decode")],
    }, reasons
    assert {n["member_siren"] for n in notes_b} == {b}

    # A's flow is untouched: still acknowledged, no FAILED; what A heard since is the
    # repeated ACCEPTED of the resend (same event id, so nothing new) and what follows an
    # acknowledgement anyway (the stamped acte, prefecture messages), all `acknowledged`.
    notes_a = await notifications(hub.bootstrap, a)
    assert {n["member_siren"] for n in notes_a} == {a}
    assert not [n for n in notes_a if n["kind"] in ("FAILED", "REJECTED")], notes_a
    after = by_flow(notes_a, target)
    seen = {m["event_id"] for m in notes_a_before}
    new = [(n["kind"], n["state"]) for n in after if n["event_id"] not in seen]
    assert {state for _, state in new} <= {"acknowledged"}, new
    assert {kind for kind, _ in new} <= {"STATE_CHANGED", "PARTNER_MESSAGE"}, new
    assert [n["kind"] for n in after].count("ACCEPTED") == 2, "the resend is answered again"
    history = await flow_history(hub.bootstrap, target, machines=BY_TYPE)
    assert history[-1]["state"] == "acknowledged", [e["state"] for e in history]
    assert [e["state"] for e in history].count("received") == 1

    # Nothing of B was dead-lettered: it was told instead.
    assert [d for d in await dead_letters(hub.bootstrap) if d.stage == "ingress"] == []
    print(f"\nhostile ingress: 3 poison records of B with A's headers, A's resend and the next "
          f"acte of each member all settled after {elapsed:.1f} s; B's reasons {reasons}")


async def test_an_unknown_members_record_is_dead_lettered_and_health_says_so(
    hub: FaultHub,
) -> None:
    healthy = cli(hub, "health")
    unknown = sirens("45", 1)[0]
    async with admin_client(hub.bootstrap) as admin:
        await apply_topics(admin, [member_topics.submissions(unknown)])
    target = flow_id_for(hub.sirens[0], f"{hub.sirens[0]}-A0")
    await publish_as_attacker(
        hub.bootstrap, unknown, [("stray-1", b"\x00\xffnot avro")],
        [(FLOW_ID_HEADER, target.encode()), (h.MEMBER, hub.sirens[0].encode())],
    )
    deadline = time.monotonic() + 60
    letters: list[Any] = []
    while not letters and time.monotonic() < deadline:
        letters = [d for d in await dead_letters(hub.bootstrap) if d.stage == "ingress"]
        if not letters:
            await asyncio.sleep(0.5)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter.value == b"\x00\xffnot avro"
    assert letter.origin_topic == member_topics.submissions(unknown).name
    assert letter.header(h.DLQ_GROUP) == f"{hub.settings.app_id}-ingress"
    assert letter.error_class == "relais.errors.UnknownMemberError"
    assert "handle_submission" in (letter.header(h.DLQ_STACK) or "")
    assert letter.flow_id is None and letter.member is None, "the forged headers are dropped"
    notes_a = await notifications(hub.bootstrap, hub.sirens[0])
    assert not [n for n in notes_a if n["kind"] == "FAILED"]

    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    unhealthy = cli(hub, "health")
    assert unhealthy.returncode == 1, unhealthy.stdout + unhealthy.stderr
    assert "unhealthy: ingress (1 open dead letter(s)" in unhealthy.stderr, unhealthy.stderr
    print("\n  relais health:\n    " + unhealthy.stdout.strip().replace("\n", "\n    ")
          + "\n    " + unhealthy.stderr.strip())
