"""The first flow through the real plumbing: member back-office → ingress → notification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import pytest

from ops.demo_documents import minimal_pdf
from ops.notifications import NotificationWatcher
from ops.submissions import ActeDraft, publish_acte, publish_raw, submission_headers
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.wire.avro_codec import AvroCodec
from tests.integration.conftest import RunningHub, members_for, register
from topics import member as member_topics
from topics.catalogue import FLOW_STATE

pytestmark = pytest.mark.integration

MEMBER = ("212102313", "Commune de Dijon (test)", "021")
LATE_MEMBER = ("217100072", "Commune de Mâcon (test)", "071")


async def _draft(hub: RunningHub, siren: str, submission_id: str) -> ActeDraft:
    store = FilesystemBlobStore(hub.settings.blob_dir)
    blob = await store.put_bytes(
        minimal_pdf(f"acte {submission_id}"), media_type="application/pdf",
        filename=f"{submission_id}.pdf", owner=siren,
    )
    return ActeDraft(
        submission_id=submission_id, member_siren=siren, nature_code=1, matieres=(7, 1),
        numero_interne="D2026_1", decision_date=date(2026, 11, 2), objet="Budget",
        document=blob,
    )


@asynccontextmanager
async def _member_session(
    hub: RunningHub, member: tuple[str, str, str]
) -> AsyncIterator[tuple[NotificationWatcher, Publisher]]:
    """``member`` registered, a watcher on its notifications from the beginning and a
    publisher for its submissions; both stopped on the way out."""
    settings = hub.settings
    await register(settings, members_for([member]))
    codec = AvroCodec()
    watcher = NotificationWatcher(settings.bootstrap_servers, member[0], codec)
    await watcher.start(from_beginning=True)
    publisher = Publisher(settings.bootstrap_servers, codec, client_id="tests")
    await publisher.start()
    try:
        yield watcher, publisher
    finally:
        await publisher.stop()
        await watcher.stop()


async def _flow_states(bootstrap: str, flow_ids: set[str], timeout: float) -> dict[str, str]:
    codec = AvroCodec()
    consumer = kafka_clients.consumer(
        FLOW_STATE.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
    )
    await consumer.start()
    states: dict[str, str] = {}
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        def settled() -> bool:
            return flow_ids <= set(states) and "received" not in states.values()

        while not settled() and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    state = codec.decode(record.value, expected="FlowState").record
                    states[state["flow_id"]] = state["state"]
    finally:
        await consumer.stop()
    return states


async def test_submissions_are_accepted_or_rejected_once_each(hub: RunningHub) -> None:
    settings = hub.settings
    siren = MEMBER[0]
    async with _member_session(hub, MEMBER) as (watcher, publisher):
        await publish_acte(publisher, await _draft(hub, siren, "ok-1"))
        await publish_raw(publisher, siren, "garbage-1", b"\x00\x01 not avro")
        mismatched = await _draft(hub, siren, "mismatch-1")
        await publisher.publish(
            member_topics.submissions(siren).name,
            key="mismatch-1",
            schema_name="ActeSubmission",
            record={**mismatched.to_record(), "member_siren": "005520135"},
            headers=submission_headers(publisher, siren, "mismatch-1"),
        )
        expected = {flow_id_for(siren, k) for k in ("ok-1", "garbage-1", "mismatch-1")}
        # ok-1 is accepted by the ingress, then refused by the acts checks: this member
        # has no TdT configured (the acts flow itself is tested in test_acts_flow).
        await watcher.wait_until(lambda got: len(got) >= 4, 60)
        await watcher.poll(2.0)  # anything duplicated would arrive now
    assert len(watcher.received) == 4, [n["flow_id"] for n in watcher.received]
    by_flow = {n["flow_id"]: n for n in watcher.received if n["kind"] != "ACCEPTED"}
    ok = [n for n in watcher.received if n["flow_id"] == flow_id_for(siren, "ok-1")]
    assert [n["kind"] for n in ok] == ["ACCEPTED", "REJECTED"]
    assert [r["code"] for r in ok[1]["reasons"]] == ["no_tdt"]
    garbage = by_flow[flow_id_for(siren, "garbage-1")]
    assert garbage["kind"] == "REJECTED"
    assert garbage["reasons"][0]["code"] == "value_decode"
    mismatch = by_flow[flow_id_for(siren, "mismatch-1")]
    assert mismatch["kind"] == "REJECTED"
    assert [r["field"] for r in mismatch["reasons"]] == ["member_siren"]
    states = await _flow_states(settings.bootstrap_servers, expected, 30)
    assert states[flow_id_for(siren, "ok-1")] == "rejected"
    assert states[flow_id_for(siren, "garbage-1")] == "rejected"


async def test_member_registered_while_hub_runs_is_served_without_restart(
    hub: RunningHub,
) -> None:
    siren = LATE_MEMBER[0]
    async with _member_session(hub, LATE_MEMBER) as (watcher, publisher):
        await publish_acte(publisher, await _draft(hub, siren, "late-1"))
        flow = flow_id_for(siren, "late-1")
        await watcher.wait_until(lambda got: any(n["flow_id"] == flow for n in got), 60)
    kinds = [n["kind"] for n in watcher.received if n["flow_id"] == flow]
    assert kinds[0] == "ACCEPTED"
    assert hub.worker.running()
