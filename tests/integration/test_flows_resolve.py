"""`relais flows resolve` on the real broker: a flow parked *uncertain* (its journal entry and
flow state published directly, as acts-delivery leaves them) is settled --posted (journal
POSTED, flow `posted`, first status check waiting on its delay tier, audit entry) or
--not-posted (journal VALIDATED, flow `validated`, the acte back on its way to acts-delivery);
any other flow is refused with exit code 1 and nothing written."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from typer.testing import CliRunner

from agents.acts.links import ActeLink, LinkIndex
from ops.audit import read_audit
from ops.flows import flow_history
from ops.resolve import resolve_on_kafka
from relais.cli import flows_cmd
from relais.errors import ValidationError
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, flow_state_record
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders, header_value
from tests.integration.conftest import apply_hub_topics, members_for, register
from topics.catalogue import ACTS_DELIVERY, ACTS_LINKS, ACTS_STATUS, FLOW_EVENTS

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
        await publisher.publish(ACTS_LINKS.name, key=flow_id, schema_name="ActeLink",
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
    history = asyncio.run(flow_history(settings.bootstrap_servers, flow_id))
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
    history = asyncio.run(flow_history(settings.bootstrap_servers, flow_id))
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
