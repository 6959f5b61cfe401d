"""pes-delivery against the sandbox TdT's Hélios pages (in process): imported once, an
interrupted import reconciled by content (0 duplicate imports), S²LOW's refusal a rejection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agents.pes.delivery import handle_delivery
from agents.pes.deps import PesDeps
from connectors.tdt.helios import HeliosConnector
from relais.flows.ids import flow_id_for
from relais.journal.entry import JournalEntry
from relais.members.model import Member, TdtSettings
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from tests.unit.acts_fakes import DictMembers, FakeBlobs, FakeRecord, decoded, flow_events
from tests.unit.test_helios_sandbox import BASE, Box, helios, pes
from tests.unit.test_pes_validation import Journal
from topics.journal import DELIVERY_JOURNAL
from topics.pes import PES_DELIVERY

SIREN = "243100633"


class Publisher:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def publish(self, topic: str, *, key: Any, schema_name: str,
                      record: dict[str, Any], headers: Any) -> None:
        self.records.append(record)


class Accounts:
    def __init__(self, connector: HeliosConnector) -> None:
        self.connector = connector

    def for_member(self, member: Member) -> HeliosConnector:
        return self.connector


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


class World:
    def __init__(self, codec: AvroCodec, box: Box) -> None:
        self.codec = codec
        self.box = box
        self.blobs = FakeBlobs()
        self.journal = Journal()
        self.publisher = Publisher()
        member = Member(siren=SIREN, name="Sicoval", department="031", token_sha256="x",
                        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
                        tdt=TdtSettings(url=BASE, login="sicoval", password_env="X"))
        self.deps = PesDeps(codec=codec, members=DictMembers(member), blobs=self.blobs,
                            journal=self.journal, connectors=Accounts(box.connector),
                            publisher=self.publisher)

    def record(self, content: bytes, submission_id: str = "pes-1") -> FakeRecord:
        blob = self.blobs.add(content, "pes.xml", "text/xml")
        flow_id = flow_id_for(SIREN, submission_id)
        value = {"submission_id": submission_id, "member_siren": SIREN, "pes_aller": blob}
        headers = {FLOW_ID_HEADER: flow_id, h.MEMBER: SIREN}
        return FakeRecord(topic=PES_DELIVERY.name, value=self.codec.encode("PesSubmission", value),
                          key=flow_id.encode(),
                          headers=tuple((k, v.encode()) for k, v in headers.items()))

    async def transactions(self) -> int:
        answer = await self.box.control.get("/sandbox/helios/stats")
        return int(answer.json()["transactions"])


def _states(codec: AvroCodec, outputs: list[Any]) -> list[str]:
    return [e["state"] for e in flow_events(codec, outputs)]


async def test_imported_once_then_skipped(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        record = world.record(pes("D1"))
        outputs = await handle_delivery(record, world.deps)
        assert _states(codec, outputs) == ["posted"]
        [entry] = decoded(codec, outputs, DELIVERY_JOURNAL.name)
        assert (entry["step"], entry["partner_ref"], entry["keys"]["after_id"]) == (
            "POSTED", "1", "0")
        assert [r["step"] for r in world.publisher.records] == ["POSTING"]
        assert await handle_delivery(record, world.deps) == []
        assert await world.transactions() == 1


async def test_an_import_that_landed_before_a_crash_is_reconciled(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        await box.connector.import_pes(pes("OTHER"), "other.xml")  # someone else's, id 1
        content = pes("D2")
        landed = await box.connector.import_pes(content, "d2.xml")  # the lost answer, id 2
        record = world.record(content)
        flow_id = flow_id_for(SIREN, "pes-1")
        world.journal.put_local(JournalEntry(
            flow_id=flow_id, flow_type="pes", member_siren=SIREN, partner="tdt",
            step="POSTING", idempotency_key=f"{flow_id}:import", account=BASE,
            keys={"after_id": "0"}))
        outputs = await handle_delivery(record, world.deps)
        assert _states(codec, outputs) == ["posted"]
        [entry] = decoded(codec, outputs, DELIVERY_JOURNAL.name)
        assert entry["partner_ref"] == landed.transaction_id == "2"
        assert await world.transactions() == 2


async def test_an_import_that_never_landed_is_made(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        flow_id = flow_id_for(SIREN, "pes-1")
        world.journal.put_local(JournalEntry(
            flow_id=flow_id, flow_type="pes", member_siren=SIREN, partner="tdt",
            step="POSTING", idempotency_key=f"{flow_id}:import", account=BASE,
            keys={"after_id": "0"}))
        outputs = await handle_delivery(world.record(pes("D3")), world.deps)
        assert _states(codec, outputs) == ["posted"]
        assert await world.transactions() == 1


async def test_s2low_refusal_is_a_rejection(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        content = pes("D4")
        await box.connector.import_pes(content, "earlier.xml")  # same bytes, another flow
        outputs = await handle_delivery(world.record(content), world.deps)
        assert _states(codec, outputs) == ["rejected"]
        [entry] = decoded(codec, outputs, DELIVERY_JOURNAL.name)
        assert entry["step"] == "REFUSED"
        assert await world.transactions() == 1
