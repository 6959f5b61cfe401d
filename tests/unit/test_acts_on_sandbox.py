"""The acts handlers with the real S²LOW connector against the S²LOW-faithful sandbox TdT
(in process, ASGI transport, a clock moved by hand): no broker, only the Kafka side faked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from agents.acts.delivery import handle_delivery
from agents.acts.deps import ActsDeps
from agents.acts.links import ActeLink
from agents.acts.status import handle_status
from connectors.tdt.models import ActeForm, UploadFile
from connectors.tdt.registry import TdtConnectors
from relais.api.auth import hash_token
from relais.documents import sample_pdf
from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.members.model import Member, TdtSettings
from relais.stages import headers as h
from relais.stages.delays import TIERS
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER
from sandbox.tdt import SandboxAccount, SandboxConfig, Schedule, create_tdt_sandbox
from sandbox.tdt.state import TdtState
from tests.unit.acts_fakes import (
    DictMembers,
    FakeBlobs,
    FakeJournal,
    FakeLinks,
    FakeRecord,
    FakeSnapshots,
)
from topics import member as member_topics
from topics.acts import ACTS_DELIVERY, ACTS_STATUS
from topics.journal import DELIVERY_JOURNAL

BASE = "http://tdt.sandbox"
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
SCHEDULE = Schedule(transmit_after=2, acknowledge_after=10, prefecture_message_after=3600)
DEMO = SandboxAccount(login="demo", password="demo", siren="210600235", department="006")
SIGNER = SandboxAccount(login="signer", password="pw", siren="200000180", department="021",
                        must_sign=True)
PDF = sample_pdf("Deliberation du conseil municipal")
DELAYS = {t.topic.name for t in TIERS}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hub:
    codec: AvroCodec
    deps: ActsDeps
    clock: Clock
    app: Any
    links: FakeLinks
    blobs: FakeBlobs

    @property
    def tdt(self) -> TdtState:
        state: TdtState = self.app.state.tdt
        return state

    def advance(self, seconds: float) -> None:
        self.clock.now += timedelta(seconds=seconds)


def _member(account: SandboxAccount) -> Member:
    return Member(
        siren=account.siren, name=account.login, department=account.department,
        token_sha256=hash_token("t"), registered_at=START,
        tdt=TdtSettings(url=BASE, login=account.login, password_env=f"PW_{account.login}"),
    )


@asynccontextmanager
async def hub() -> AsyncIterator[Hub]:
    clock = Clock()

    async def no_sleep(seconds: float) -> None:
        return None

    app = create_tdt_sandbox(SandboxConfig(schedule=SCHEDULE, accounts=(DEMO, SIGNER)),
                             clock=clock, sleep=no_sleep)
    connectors = TdtConnectors(
        environ={"PW_demo": "demo", "PW_signer": "pw"},
        transport=httpx.ASGITransport(app=app),
    )
    codec, links, blobs = AvroCodec(), FakeLinks(), FakeBlobs()
    deps = ActsDeps(
        codec=codec, members=DictMembers(_member(DEMO), _member(SIGNER)), blobs=blobs,
        links=links, classifications=FakeSnapshots(), connectors=connectors,
        journal=FakeJournal(), poll_schedule=("5s", "30s"),
    )
    try:
        yield Hub(codec, deps, clock, app, links, blobs)
    finally:
        await connectors.aclose()


def _delivery(box: Hub, account: SandboxAccount, submission_id: str, number: str,
              delivery: str = "VALIDATED") -> FakeRecord:
    flow_id = flow_id_for(account.siren, submission_id)
    document = box.blobs.add(PDF, "deliberation.pdf")
    submission = {
        "submission_id": submission_id, "member_siren": account.siren, "nature_code": 1,
        "matieres": [1, 1], "numero_interne": number, "decision_date": date(2024, 2, 28),
        "objet": "Délibération du conseil", "document": {"blob": document, "typology": None},
        "annexes": [], "document_papier": False, "classification_date": None,
    }
    box.links.put_local(ActeLink(
        flow_id=flow_id, member_siren=account.siren, submission_id=submission_id,
        id_acte=f"{account.department}-{account.siren}-20240228-{number}-DE",
        numero_interne=number, decision_date=date(2024, 2, 28), nature_code=1,
        delivery=delivery, idempotency_key=f"{flow_id}:post",
    ))
    return FakeRecord(
        topic=ACTS_DELIVERY.name, key=flow_id.encode(),
        value=box.codec.encode("ActeSubmission", submission),
        headers=((FLOW_ID_HEADER, flow_id.encode()), (h.MEMBER, account.siren.encode())),
    )


def _notes(box: Hub, siren: str, outputs: list[Outbound]) -> list[dict[str, Any]]:
    topic = member_topics.notifications(siren).name
    return [box.codec.decode(o.value or b"").record for o in outputs if o.topic == topic]


def _polls(outputs: list[Outbound]) -> list[FakeRecord]:
    return [FakeRecord(topic=ACTS_STATUS.name, key=o.key, value=o.value, headers=o.headers)
            for o in outputs
            if o.topic in DELAYS and h.get(o.headers, h.DELAY_TARGET) == ACTS_STATUS.name]


async def test_a_reused_number_is_rejected_with_s2lows_own_words() -> None:
    async with hub() as box:
        first = await handle_delivery(_delivery(box, DEMO, "s1", "D2024_001"), box.deps)
        assert [n["state"] for n in _notes(box, DEMO.siren, first)] == ["posted"]
        again = await handle_delivery(_delivery(box, DEMO, "s2", "D2024_001"), box.deps)
        [note] = _notes(box, DEMO.siren, again)
        assert (note["kind"], note["state"]) == ("REJECTED", "rejected")
        [reason] = note["reasons"]
        assert reason["code"] == "tdt_refused" and reason["message"] in note["message"]
        assert "D2024_001" in reason["message"] or "numéro" in reason["message"].lower()
        assert len(box.tdt.transactions) == 1


async def test_a_post_whose_answer_was_lost_is_found_not_posted_twice() -> None:
    async with hub() as box:
        connector = box.deps.connectors.for_member(_member(DEMO))
        lost = await connector.post_acte(
            ActeForm(nature_code=1, number="D2024_002", subject="Budget",
                     decision_date=date(2024, 2, 28), classification=(1, 1),
                     type_acte="99_DE"),
            [UploadFile(name="deliberation.pdf", content=PDF)],
        )
        record = _delivery(box, DEMO, "s3", "D2024_002", delivery="POSTING")
        outputs = await handle_delivery(record, box.deps)
        links = [box.codec.decode(o.value or b"").record for o in outputs
                 if o.topic == DELIVERY_JOURNAL.name]
        assert links[0]["partner_ref"] == lost.transaction_id
        assert len(box.tdt.transactions) == 1


async def test_signing_state_told_then_acknowledged_and_stamped_copy_delivered() -> None:
    async with hub() as box:
        posted = await handle_delivery(_delivery(box, SIGNER, "s4", "D2024_003"), box.deps)
        [poll] = _polls(posted)
        box.advance(5)
        held = await handle_status(poll, box.deps)
        [note] = _notes(box, SIGNER.siren, held)
        assert "waiting to be signed" in note["message"]
        transaction = next(iter(box.tdt.transactions))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=box.app)) as control:
            released = await control.post(f"{BASE}/sandbox/transactions/{transaction}/release")
            assert released.status_code == 200, released.text
        [poll] = _polls(held)
        states: list[str] = []
        for _ in range(8):
            box.advance(3)
            outputs = await handle_status(poll, box.deps)
            states += [n["state"] for n in _notes(box, SIGNER.siren, outputs)]
            if "acknowledged" in states:
                break
            [poll] = _polls(outputs)
        assert states[-2:] == ["transmitted", "acknowledged"]
        [stamp] = _polls(outputs)
        delivered = await handle_status(stamp, box.deps)
        [note] = _notes(box, SIGNER.siren, delivered)
        [document] = note["documents"]
        stamped = box.blobs.blobs[document["sha256"]]
        assert stamped.startswith(b"%PDF") and len(stamped) > len(PDF)
        assert note["details"]["document"] == "stamped_acte"
