"""pes-delivery against the sandbox TdT's Hélios pages (in process): imported once, an
interrupted import reconciled by content (0 duplicate imports), S²LOW's refusal a rejection,
its "doublon" (the file is already there) an uncertain flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.pes.delivery import handle_delivery
from agents.pes.deps import PesDeps
from agents.pes.retours import PesRetourWatcher
from agents.pes.status import handle_status
from connectors.tdt.helios import DUPLICATE_CODE, HeliosConnector
from relais.flows.ids import flow_id_for
from relais.journal.entry import JournalEntry
from relais.members.model import Member, TdtSettings
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from tests.unit.acts_fakes import DictMembers, FakeBlobs, FakeRecord, decoded, flow_events
from tests.unit.test_helios_sandbox import BASE, Box, helios, pes
from tests.unit.test_pes_validation import Journal
from topics import member as member_topics
from topics.journal import DELIVERY_JOURNAL
from topics.pes import PES_DELIVERY, PES_STATUS

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


def notifications_of(codec: AvroCodec, outputs: list[Any]) -> list[dict[str, Any]]:
    return decoded(codec, outputs, member_topics.notifications(SIREN).name)


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


async def test_each_attempt_records_the_high_water_mark_known_at_its_call(
        codec: AvroCodec) -> None:
    """A retry walks from its previous attempt's after_id; its own intent records the
    highest id the journal knows now, so the next walk starts near this call."""
    async with helios() as box:
        world = World(codec, box)
        world.journal.put_local(JournalEntry(
            flow_id="other", flow_type="pes", member_siren=SIREN, partner="tdt",
            step="POSTED", idempotency_key="other:import", account=BASE, partner_ref="57"))
        flow_id = flow_id_for(SIREN, "pes-1")
        world.journal.put_local(JournalEntry(
            flow_id=flow_id, flow_type="pes", member_siren=SIREN, partner="tdt",
            step="POSTING", idempotency_key=f"{flow_id}:import", account=BASE,
            keys={"after_id": "0"}))
        outputs = await handle_delivery(world.record(pes("D6")), world.deps)
        assert _states(codec, outputs) == ["posted"]
        assert [(r["step"], r["keys"]["after_id"]) for r in world.publisher.records] == [
            ("POSTING", "57")]


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
        outputs = await handle_delivery(world.record(b""), world.deps)  # S²LOW: no file
        assert _states(codec, outputs) == ["rejected"]
        [entry] = decoded(codec, outputs, DELIVERY_JOURNAL.name)
        assert entry["step"] == "REFUSED"
        [reason] = notifications_of(codec, outputs)[-1]["reasons"]
        assert reason["code"] == "tdt_refused"
        assert await world.transactions() == 0


async def test_a_file_s2low_already_holds_is_uncertain_not_rejected(codec: AvroCodec) -> None:
    """Same bytes posted outside this flow: S²LOW's "doublon" means the file IS at the TdT."""
    async with helios() as box:
        world = World(codec, box)
        content = pes("D4")
        await box.connector.import_pes(content, "earlier.xml")  # same bytes, another flow
        outputs = await handle_delivery(world.record(content), world.deps)
        assert _states(codec, outputs) == ["uncertain"]
        [entry] = decoded(codec, outputs, DELIVERY_JOURNAL.name)
        assert entry["step"] == "UNCERTAIN"
        [reason] = notifications_of(codec, outputs)[-1]["reasons"]
        assert reason["code"] == DUPLICATE_CODE and "doublon" in reason["message"]
        assert await world.transactions() == 1
        assert await handle_delivery(world.record(content), world.deps) == []  # parked


async def test_a_lost_import_beyond_the_find_window_is_uncertain(codec: AvroCodec) -> None:
    """The import landed, its answer was lost, and more than ``find_window`` transactions
    came between: find_pes cannot see it, S²LOW refuses the re-import as a doublon, and the
    flow waits for an operator instead of being called rejected."""
    async with helios() as box:
        world = World(codec, box)
        world.deps.find_window = 2
        for n in range(3):
            await box.connector.import_pes(pes(f"OTHER{n}"), f"other{n}.xml")  # ids 1-3
        content = pes("D5")
        await box.connector.import_pes(content, "d5.xml")  # the lost answer, id 4
        flow_id = flow_id_for(SIREN, "pes-1")
        world.journal.put_local(JournalEntry(
            flow_id=flow_id, flow_type="pes", member_siren=SIREN, partner="tdt",
            step="POSTING", idempotency_key=f"{flow_id}:import", account=BASE,
            keys={"after_id": "0"}))
        outputs = await handle_delivery(world.record(content), world.deps)
        assert _states(codec, outputs) == ["uncertain"]
        note = notifications_of(codec, outputs)[-1]
        assert (note["kind"], note["reasons"][0]["code"]) == ("FAILED", DUPLICATE_CODE)
        assert "1…2" in note["message"]
        assert await world.transactions() == 4
        world.deps.find_window = 10  # with a wide enough window the same case is found
        world.journal.put_local(JournalEntry(
            flow_id=flow_id, flow_type="pes", member_siren=SIREN, partner="tdt",
            step="POSTING", idempotency_key=f"{flow_id}:import", account=BASE,
            keys={"after_id": "0"}))
        found = await handle_delivery(world.record(content), world.deps)
        assert _states(codec, found) == ["posted"]
        [entry] = decoded(codec, found, DELIVERY_JOURNAL.name)
        assert entry["partner_ref"] == "4"


def _check_record(codec: AvroCodec, outputs: list[Any]) -> FakeRecord:
    """The status check among ``outputs`` (on a delay tier), as pes-status receives it."""
    [check] = [o for o in outputs if o.topic.startswith("relais.delay.")]
    return FakeRecord(topic=PES_STATUS.name, value=check.value, key=check.key,
                      headers=tuple(check.headers))


async def _until_answered(world: World, outputs: list[Any]) -> list[Any]:
    """Poll (moving the sandbox clock) until a poll answers without a next check."""
    states: list[Any] = []
    for _ in range(10):
        world.box.clock.now += timedelta(seconds=3)
        outputs = await handle_status(_check_record(world.codec, outputs), world.deps)
        states += outputs
        if not [o for o in outputs if o.topic.startswith("relais.delay.")]:
            return states
    raise AssertionError("no answer after 10 polls")


async def test_posted_transmitted_then_acknowledged(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        posted = await handle_delivery(world.record(pes("S1")), world.deps)
        answered = await _until_answered(world, posted)
        assert _states(codec, answered) == ["transmitted", "acknowledged"]
        note = notifications_of(codec, answered)[-1]
        assert note["details"]["outcome"] == "acknowledged"
        assert note["documents"][0]["filename"] == "PES_ACQUIT-1.xml"
        stored = world.blobs.blobs[note["documents"][0]["sha256"]]
        assert b"PES_ACQUIT" in stored


async def test_partly_rejected_file_names_the_element_and_the_dgfip_label(
        codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        await box.knobs(partial_rate=1.0)
        posted = await handle_delivery(world.record(pes("S2", bordereaux=2)), world.deps)
        answered = await _until_answered(world, posted)
        assert _states(codec, answered)[-1] == "partially-accepted"
        note = notifications_of(codec, answered)[-1]
        assert [(r["field"], r["code"], r["message"]) for r in note["reasons"]] == [(
            "ElementACQUIT[2](NumBord=2373/ExerciceBord=2015)/DetailPiece[1]/DetailLigne[1]",
            "ERREUR_AUTRE", "1971 - Compte fonction présent à tort")]
        elements = json.loads(note["details"]["elements"])
        assert [(e["accepted"], e["rule_codes"]) for e in elements] == [
            (True, []), (False, ["1971"])]


async def test_s2low_error_state_is_a_rejection(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        content = pes("S3").replace(b'<IdPost V="031007"/>', b'<IdPost V="0310071"/>')
        posted = await handle_delivery(world.record(content), world.deps)
        answered = await _until_answered(world, posted)
        assert _states(codec, answered) == ["rejected"]
        [reason] = notifications_of(codec, answered)[-1]["reasons"]
        assert (reason["code"], reason["message"]) == (
            "tdt_status_-1", "Le champ IdPost dépasse 6 caractères")


class RawPublisher:
    def __init__(self) -> None:
        self.outputs: list[Any] = []

    async def publish_raw(self, topic: str, *, key: Any, value: bytes | None,
                          headers: Any) -> None:
        self.outputs.append(FakeRecord(topic=topic, value=value, key=key,
                                       headers=tuple(headers)))


class MemberList:
    def __init__(self, world: World) -> None:
        self.world = world

    def all(self) -> list[Member]:
        member = self.world.deps.members.get(SIREN)
        assert member is not None
        return [member]


async def test_pes_retour_delivered_once_and_marked_read(codec: AvroCodec) -> None:
    async with helios() as box:
        world = World(codec, box)
        await box.knobs(retour_rate=1.0, duplicate_rate=1.0)
        await box.connector.import_pes(pes("R1"), "r1.xml")
        box.clock.now += timedelta(seconds=80)
        assert len(await box.connector.list_pes_retour()) == 2  # listed twice, two ids
        publisher = RawPublisher()
        watcher = PesRetourWatcher(world.deps, MemberList(world), publisher)
        assert await watcher.run_once() == 1
        [note] = notifications_of(codec, publisher.outputs)
        assert (note["kind"], note["state"], note["flow_type"]) == (
            "PARTNER_MESSAGE", "delivered", "pes-retour")
        assert b"PES_Retour" in world.blobs.blobs[note["documents"][0]["sha256"]]
        assert await box.connector.list_pes_retour() == []
        assert await watcher.run_once() == 0
