"""`relais flows resolve` on the real broker: a flow parked *uncertain* (its journal entry and
flow state published directly, as acts-delivery leaves them) is settled --posted (journal
POSTED, flow `posted`, first status check waiting on its delay tier, audit entry) or
--not-posted (journal VALIDATED, flow `validated`, the acte back on its way to acts-delivery);
any other flow is refused with exit code 1 and nothing written."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from typer.testing import CliRunner

from agents.acts.delivery import acte_form
from agents.acts.links import ActeLink, LinkIndex
from agents.acts.machines import BY_TYPE
from connectors.tdt.models import UploadFile
from connectors.tdt.registry import TdtConnectors
from hub.cli import flows_cmd
from ops.audit import read_audit
from ops.demo_documents import minimal_pdf
from ops.flows import flow_history
from ops.resolve import resolve_on_kafka
from ops.stack import (
    Stack,
    sandbox_base_port,
    sandbox_config,
    sandbox_control_client,
    sandbox_member,
    sandbox_url,
)
from relais.actes.ids import build_id_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.errors import ValidationError
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, flow_state_record
from relais.identifiers import luhn_check_digit
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders, header_value
from tests.integration.conftest import apply_hub_topics, members_for, register
from topics.acts import ACTS_DELIVERY, ACTS_STATUS
from topics.catalogue import FLOW_EVENTS
from topics.journal import DELIVERY_JOURNAL

pytestmark = pytest.mark.integration

SIREN = "217500016"


@pytest.fixture(scope="module")
def settings(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("resolve")
    settings = Settings.from_env(kafka_bootstrap=kafka_bootstrap, data_dir=data_dir,
                                 app_id=f"relais-resolve-{uuid.uuid4().hex[:8]}",
                                 poll_tiers="5s,30s")
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, members_for([(SIREN, "Commune de Paris", "075")])))
    return settings


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> CliRunner:
    monkeypatch.setattr(flows_cmd, "load_settings", lambda: settings)
    monkeypatch.setenv("RELAIS_OPERATOR", "operator-on-duty")
    return CliRunner()


def _submission(submission_id: str) -> dict[str, Any]:
    return {
        "submission_id": submission_id, "member_siren": SIREN, "nature_code": 1,
        "matieres": [7, 1], "numero_interne": submission_id.replace("-", "_"),
        "decision_date": date(2026, 11, 30), "objet": "Budget primitif",
        "document": {"blob": {"sha256": "a" * 64, "size": 596, "media_type": "application/pdf",
                              "filename": "budget.pdf"}, "typology": None},
        "annexes": [], "document_papier": False,
    }


async def _park(settings: Settings, delivery: str, *, with_submission: bool = False) -> str:
    """A flow as acts-delivery leaves it: a journal entry at ``delivery`` (after its POSTING
    step: the TdT URL is known) and the flow's state; optionally its validated submission
    on relais.acts.delivery."""
    submission_id = f"D{uuid.uuid4().hex[:10].upper()}"
    flow_id = flow_id_for(SIREN, submission_id)
    codec = AvroCodec()
    link = ActeLink(
        flow_id=flow_id, member_siren=SIREN, submission_id=submission_id,
        id_acte=f"021-{SIREN}-20261130-{submission_id}-DE", numero_interne=submission_id,
        decision_date=date(2026, 11, 30), nature_code=1, delivery=delivery,
        idempotency_key=f"{flow_id}:post", tdt_url="https://tdt.example.org",
    )
    flow = FlowContext(flow_id, SIREN, "acte", submission_id)
    state = "uncertain" if delivery == "UNCERTAIN" else "validated"
    event = flow_state_record(flow, state=state, previous_state="validated",
                              stage="acts-delivery", sequence=91, error_code="uncertain")
    headers = EventHeaders.new(source="/tests", type="t", subject=flow_id, flow_id=flow_id)
    publisher = Publisher(settings.bootstrap_servers, codec, client_id="tests")
    await publisher.start()
    try:
        await publisher.publish(DELIVERY_JOURNAL.name, key=flow_id, schema_name="JournalEntry",
                                record=link.to_record(), headers=headers)
        await publisher.publish(FLOW_EVENTS.name, key=flow_id, schema_name="FlowState",
                                record=event, headers=headers)
        if with_submission:
            raw = h.replace(headers.to_kafka(), **{FLOW_ID_HEADER: flow_id, h.MEMBER: SIREN,
                                                   h.ATTEMPT: "2"})
            await publisher.publish_raw(
                ACTS_DELIVERY.name, key=flow_id,
                value=codec.encode("ActeSubmission", _submission(submission_id)), headers=raw)
    finally:
        await publisher.stop()
    return flow_id


async def _records(settings: Settings, topic: str, key: str) -> list[Any]:
    """Every committed record of ``topic`` keyed ``key``."""
    consumer = kafka_clients.consumer(bootstrap_servers=settings.bootstrap_servers,
                                      enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    found = []
    try:
        partitions = [TopicPartition(topic, p)
                      for p in await consumer._client._wait_on_metadata(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                found += [r for r in batch if r.key == key.encode()]
    finally:
        await consumer.stop()
    return found


async def _link(settings: Settings, flow_id: str, until: str | None = None) -> ActeLink | None:
    """The flow's journal entry; with ``until``, read again (10 s at most) until it shows that
    step: a committed transaction becomes readable a moment after the commit returns."""
    for _ in range(20):
        links = LinkIndex(settings.bootstrap_servers, AvroCodec())
        await links.start()
        try:
            link = links.get(flow_id)
        finally:
            await links.stop()
        if until is None or (link is not None and link.delivery == until):
            return link
        await asyncio.sleep(0.5)
    return link


async def _audited(settings: Settings, flow_id: str) -> list[dict[str, Any]]:
    return [e for e in await read_audit(settings.bootstrap_servers) if e["flow_id"] == flow_id]


def test_posted_settles_the_flow_and_schedules_its_first_status_poll(
    settings: Settings, cli: CliRunner,
) -> None:
    flow_id = asyncio.run(_park(settings, "UNCERTAIN"))
    result = cli.invoke(flows_cmd.app, ["resolve", flow_id, "--posted", "4242",
                                        "--reason", "found in the TdT's list of actes"])
    assert result.exit_code == 0, result.output

    link = asyncio.run(_link(settings, flow_id, until="POSTED"))
    assert link is not None
    assert (link.delivery, link.transaction_id) == ("POSTED", "4242")

    shown = cli.invoke(flows_cmd.app, ["show", flow_id])
    assert shown.exit_code == 0, shown.output
    last = shown.output.strip().splitlines()[-1]
    assert "posted" in last and "by operator" in last, shown.output
    history = asyncio.run(flow_history(settings.bootstrap_servers, flow_id, machines=BY_TYPE))
    assert [(e["state"], e["previous_state"]) for e in history][-1] == ("posted", "uncertain")

    checks = asyncio.run(_records(settings, "relais.delay.5s", flow_id))
    assert len(checks) == 1
    assert header_value(checks[0].headers, h.DELAY_TARGET) == ACTS_STATUS.name
    check = AvroCodec().decode(checks[0].value, expected="ActeStatusCheck").record
    assert (check["transaction_id"], check["polls"]) == ("4242", 0)

    [audit] = asyncio.run(_audited(settings, flow_id))
    assert (audit["action"], audit["operator"], audit["reason"]) == (
        "resolve-posted", "operator-on-duty", "found in the TdT's list of actes")

    again = cli.invoke(flows_cmd.app, ["resolve", flow_id, "--posted", "4242"])
    assert again.exit_code == 1
    assert "is not uncertain" in again.output
    assert len(asyncio.run(_audited(settings, flow_id))) == 1


def test_not_posted_sends_the_acte_back_to_delivery_once(
    settings: Settings, cli: CliRunner,
) -> None:
    flow_id = asyncio.run(_park(settings, "UNCERTAIN", with_submission=True))
    [original] = asyncio.run(_records(settings, ACTS_DELIVERY.name, flow_id))
    result = cli.invoke(flows_cmd.app, ["resolve", flow_id, "--not-posted",
                                        "--reason", "absent from the TdT"])
    assert result.exit_code == 0, result.output

    link = asyncio.run(_link(settings, flow_id, until="VALIDATED"))
    assert link is not None
    assert (link.delivery, link.transaction_id) == ("VALIDATED", None)
    history = asyncio.run(flow_history(settings.bootstrap_servers, flow_id, machines=BY_TYPE))
    assert (history[-1]["state"], history[-1]["stage"]) == ("validated", "operator")

    [resent] = asyncio.run(_records(settings, "relais.delay.5s", flow_id))
    assert resent.value == original.value
    assert header_value(resent.headers, h.DELAY_TARGET) == ACTS_DELIVERY.name
    assert header_value(resent.headers, FLOW_ID_HEADER) == flow_id
    assert header_value(resent.headers, h.ATTEMPT) is None

    [audit] = asyncio.run(_audited(settings, flow_id))
    assert (audit["action"], audit["reason"]) == ("resolve-not-posted", "absent from the TdT")


def test_a_flow_still_being_posted_is_refused_and_nothing_is_written(
    settings: Settings, cli: CliRunner,
) -> None:
    flow_id = asyncio.run(_park(settings, "POSTING"))
    result = cli.invoke(flows_cmd.app, ["resolve", flow_id, "--posted", "1"])
    assert result.exit_code == 1
    assert "POSTING" in result.output
    with pytest.raises(ValidationError, match="no delivery journal entry"):
        asyncio.run(resolve_on_kafka(settings, f"{SIREN}-{uuid.uuid4()}", transaction_id="1",
                                     operator="tests", reason="r"))
    assert asyncio.run(_audited(settings, flow_id)) == []
    link = asyncio.run(_link(settings, flow_id))
    assert link is not None and link.delivery == "POSTING"
    assert asyncio.run(_records(settings, "relais.delay.5s", flow_id)) == []


# --- end to end: a hub worker and the sandbox TdT settle what the operator decided ------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


E2E_BODY = "21000042"
E2E_SIREN = E2E_BODY + str(luhn_check_digit(E2E_BODY))


@pytest.fixture(scope="module")
def e2e(hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A hub worker and the sandbox TdT (over mTLS) on the module's own broker."""
    data_dir = tmp_path_factory.mktemp("resolve-e2e")
    settings = Settings.from_env(
        kafka_bootstrap=hub_kafka_bootstrap, data_dir=data_dir,
        app_id=f"relais-resolve-e2e-{uuid.uuid4().hex[:8]}", sandbox_tdt_port=sandbox_base_port(),
        api_port=_free_port(), poll_tiers="5s,5s,30s",
    )
    registration = sandbox_member(settings, E2E_SIREN, "Commune de test", "021")
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, [registration]))
    stack = Stack(settings, data_dir / "logs", extra_env={"RELAIS_POLL_TIERS": "5s,5s,30s"})
    try:
        stack.start_sandbox(sandbox_config([registration]))
        stack.start_worker()
        yield stack
    finally:
        stack.stop()


async def _sandbox_stats(settings: Settings) -> dict[str, Any]:
    async with sandbox_control_client(settings) as client:
        stats: dict[str, Any] = (await client.get(f"{sandbox_url(settings)}/sandbox/stats")).json()
    return stats


async def _e2e_acte(stack: Stack) -> tuple[str, dict[str, Any], ActeLink]:
    """A valid acte of the e2e member, its document in the blob store, and its journal entry
    as acts-delivery leaves it when it parks the flow."""
    settings = stack.settings
    store = FilesystemBlobStore(settings.blob_dir)
    blob = await store.put_bytes(minimal_pdf("resolve"), media_type="application/pdf",
                                 filename="acte.pdf")
    await store.grant(blob.sha256, E2E_SIREN)
    number = f"R{uuid.uuid4().hex[:10].upper()}"
    submission = _submission(number)
    submission.update(member_siren=E2E_SIREN, numero_interne=number,
                      decision_date=date.today(), document={"blob": blob.to_dict(),
                                                            "typology": None})
    flow_id = flow_id_for(E2E_SIREN, number)
    link = ActeLink(
        flow_id=flow_id, member_siren=E2E_SIREN, submission_id=number,
        id_acte=build_id_acte("021", E2E_SIREN, date.today(), number, 1),
        numero_interne=number, decision_date=date.today(), nature_code=1,
        delivery="UNCERTAIN", idempotency_key=f"{flow_id}:post", tdt_url=sandbox_url(settings),
    )
    return flow_id, submission, link


async def _publish_parked(settings: Settings, link: ActeLink,
                          submission: dict[str, Any] | None) -> None:
    codec = AvroCodec()
    flow = FlowContext(link.flow_id, link.member_siren, "acte", link.submission_id)
    event = flow_state_record(flow, state="uncertain", previous_state="validated",
                              stage="acts-delivery", sequence=91, error_code="uncertain")
    headers = EventHeaders.new(source="/tests", type="t", subject=link.flow_id,
                               flow_id=link.flow_id)
    publisher = Publisher(settings.bootstrap_servers, codec, client_id="tests")
    await publisher.start()
    try:
        await publisher.publish(DELIVERY_JOURNAL.name, key=link.flow_id,
                                schema_name="JournalEntry",
                                record=link.to_record(), headers=headers)
        await publisher.publish(FLOW_EVENTS.name, key=link.flow_id, schema_name="FlowState",
                                record=event, headers=headers)
        if submission is not None:
            await asyncio.sleep(2)  # the worker's journal view sees UNCERTAIN first
            raw = h.replace(headers.to_kafka(), **{FLOW_ID_HEADER: link.flow_id,
                                                   h.MEMBER: link.member_siren})
            await publisher.publish_raw(ACTS_DELIVERY.name, key=link.flow_id,
                                        value=codec.encode("ActeSubmission", submission),
                                        headers=raw)
    finally:
        await publisher.stop()


async def _states_until(settings: Settings, flow_id: str, final: str,
                        timeout: float = 120) -> list[str]:
    states: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = await flow_history(settings.bootstrap_servers, flow_id, machines=BY_TYPE)
        states = [e["state"] for e in history
                  if "child_event" not in e["details"]]
        if states and states[-1] == final:
            break
        await asyncio.sleep(2)
    return states


async def test_e2e_not_posted_is_posted_once_then_acknowledged(e2e: Stack) -> None:
    settings = e2e.settings
    before = await _sandbox_stats(settings)
    flow_id, submission, link = await _e2e_acte(e2e)
    await _publish_parked(settings, link, submission)
    await asyncio.sleep(4)
    parked = await _sandbox_stats(settings)
    assert parked["posts_received"] == before["posts_received"], "an uncertain acte was posted"

    done = await resolve_on_kafka(settings, flow_id, transaction_id=None, operator="tests",
                                  reason="absent from the TdT")
    assert done.outcome == "not-posted"
    states = await _states_until(settings, flow_id, "acknowledged")
    assert states[-1] == "acknowledged", states
    assert states[:3] == ["uncertain", "validated", "posted"], states
    after = await _sandbox_stats(settings)
    assert after["transactions_created"] - before["transactions_created"] == 1
    assert after["duplicate_posts"] == before["duplicate_posts"]


async def test_e2e_posted_follows_the_tdt_transaction_to_acknowledged(e2e: Stack) -> None:
    """The earlier attempt did reach the TdT: the operator gives its transaction id and the
    hub follows it; nothing is posted again."""
    settings = e2e.settings
    flow_id, submission, link = await _e2e_acte(e2e)
    connectors = TdtConnectors(environ=e2e.env())
    member = sandbox_member(settings, E2E_SIREN, "Commune de test", "021").member
    store = FilesystemBlobStore(settings.blob_dir)
    blob = submission["document"]["blob"]
    try:
        posted = await connectors.for_member(member).post_acte(
            acte_form(submission, None),
            [UploadFile(blob["filename"], store.open(blob["sha256"]), blob["media_type"],
                        blob["size"])],
        )
    finally:
        await connectors.aclose()
    before = await _sandbox_stats(settings)
    await _publish_parked(settings, link.moved("UNCERTAIN"), None)

    done = await resolve_on_kafka(settings, flow_id, transaction_id=posted.transaction_id,
                                  operator="tests", reason="found on the TdT")
    assert done.transaction_id == posted.transaction_id
    states = await _states_until(settings, flow_id, "acknowledged")
    assert states[-1] == "acknowledged", states
    assert states[:2] == ["uncertain", "posted"], states
    after = await _sandbox_stats(settings)
    assert after["transactions_created"] == before["transactions_created"]
    assert after["status_polls"] > before["status_polls"]
