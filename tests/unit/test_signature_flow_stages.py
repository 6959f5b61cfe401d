"""The signature stages wired into the acts flow (signature-create, signature-status, then
acts-delivery with the signature), on the sandbox i-Parapheur with the official WSDL:
a signed acte goes on to the TdT with its detached signature, a rejected one goes back
to the member with the annotation and the signer's name, an overdue one is reported once,
and members without settings go straight to delivery."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.acts.delivery import handle_delivery
from agents.acts.validation import handle_submitted
from agents.signature.create import handle_request
from agents.signature.deps import SignatureDeps
from agents.signature.status import handle_check
from connectors.iparapheur import IParapheurConnector
from relais.flows.outbound import Outbound
from relais.journal.view import JournalView
from relais.members.model import Member, PartnerAccount
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from sandbox.common.clock import AdjustableClock
from sandbox.iparapheur.app import create_iparapheur_sandbox
from sandbox.iparapheur.config import IparapheurConfig, SignerBehaviour
from tests.unit.acts_fakes import (
    SIREN,
    DictMembers,
    FakeBlobs,
    FakeJournal,
    FakeRecord,
    World,
    decoded,
    flow_of,
    member,
    notifications,
    record_of,
    submission,
)
from topics.acts import ACTS_DELIVERY
from topics.signature import SIGNATURE_REQUESTS, SIGNATURE_STATUS

WSDL = (Path(__file__).parents[2] / ".." / "shared" / "reference" / "iparapheur"
        / "iparapheur.xml.wsdl")
PDF = b"%PDF-1.4\n% acte\n%%EOF\n"


def signing_member(**options: str) -> Member:
    base = member()
    account = PartnerAccount(url="http://sandbox/ws-iparapheur", login="ws-relais",
                             options={"acte.type": "ACTES", "acte.sub_type": "Deliberation",
                                      "wsdl": str(WSDL), **options})
    return Member(siren=base.siren, name=base.name, department=base.department,
                  token_sha256=base.token_sha256, registered_at=base.registered_at,
                  accounts={**base.accounts, "iparapheur": account})


class OneParapheur:
    def __init__(self, connector: IParapheurConnector) -> None:
        self.connector = connector

    def for_member(self, member: Member) -> IParapheurConnector:
        return self.connector


@dataclass
class Signing:
    deps: SignatureDeps
    clock: AdjustableClock
    http: httpx.AsyncClient
    journal: FakeJournal
    blobs: FakeBlobs


@pytest.fixture
async def signing() -> AsyncIterator[Signing]:
    clock = AdjustableClock()
    app = create_iparapheur_sandbox(IparapheurConfig(behaviour=SignerBehaviour(
        visa_seconds=1, sign_seconds=1, reject_viewer_rate=0.0, reject_signer_rate=0.0,
        slow_rate=0.0, never_rate=0.0, rejection_annotation="Délibération incomplète")),
        clock=clock)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             auth=("ws-relais", "ws-relais"), base_url="http://sandbox")
    connector = IParapheurConnector(http, endpoint="http://sandbox/ws-iparapheur", wsdl=WSDL,
                                    member=SIREN)
    codec = AvroCodec()
    journal, blobs = FakeJournal(), FakeBlobs()
    deps = SignatureDeps(codec=codec, members=DictMembers(signing_member()), blobs=blobs,
                         journal_view=JournalView("127.0.0.1:1", codec), journal=journal,
                         connectors=OneParapheur(connector), poll_schedule=("5s", "30s", "2m"))
    yield Signing(deps, clock, http, journal, blobs)
    await connector.aclose()
    await http.aclose()


def _request(s: Signing, submission_id: str) -> FakeRecord:
    document = s.blobs.add(PDF, "deliberation.pdf")
    value = submission(submission_id, document={"blob": document, "typology": None})
    return record_of(s.deps.codec, "ActeSubmission", value, SIGNATURE_REQUESTS.name,
                     flow_of(submission_id))


def _as_record(out: Outbound, topic: str) -> FakeRecord:
    return FakeRecord(topic=topic, value=out.value, key=out.key, headers=tuple(out.headers))


def _poll(outputs: list[Outbound]) -> Outbound:
    polls = [o for o in outputs if h.get(list(o.headers), h.DELAY_TARGET) == SIGNATURE_STATUS.name]
    assert len(polls) == 1
    return polls[0]


def _states(codec: AvroCodec, outputs: list[Outbound]) -> list[tuple[str, str | None]]:
    return [(n["state"], n["kind"]) for n in notifications(codec, outputs)]


async def _created(s: Signing, submission_id: str, fate: str | None = None) -> Outbound:
    outputs = await handle_request(_request(s, submission_id), s.deps)
    assert _states(s.deps.codec, outputs) == [("signing", "STATE_CHANGED")]
    poll = _poll(outputs)
    check = s.deps.codec.decode(poll.value or b"").record
    if fate is not None:
        await s.http.post("/sandbox/fates", json={check["dossier_id"]: fate})
    return poll


async def test_a_signed_acte_goes_on_to_the_tdt_with_its_signature(signing: Signing) -> None:
    s = signing
    poll = await _created(s, "sub-signed")
    again = await handle_request(_request(s, "sub-signed"), s.deps)  # a redelivered request
    assert again == []
    waiting = await handle_check(_as_record(poll, SIGNATURE_STATUS.name), s.deps)
    assert _states(s.deps.codec, waiting) == []
    assert s.deps.codec.decode(_poll(waiting).value or b"").record["polls"] == 1
    s.clock.advance(3)
    outputs = await handle_check(_as_record(poll, SIGNATURE_STATUS.name), s.deps)
    assert _states(s.deps.codec, outputs) == [("signed", "STATE_CHANGED")]
    forwarded = [o for o in outputs if o.topic == ACTS_DELIVERY.name]
    assert len(forwarded) == 1
    entry = s.deps.journal_view.get(flow_of("sub-signed"), "iparapheur")
    assert entry is not None and entry.key("outcome") == "signed"
    signature = s.blobs.blobs[entry.key("signature_sha256") or ""]
    stats = (await s.http.get("/sandbox/stats")).json()
    assert stats["dossiers_created"] == 1 and stats["dossiers_erased"] == 1

    # acts-delivery takes the forwarded acte and posts it with its signature
    world = World(s.deps.codec, blobs=s.blobs)
    world.keep_classification()
    await handle_submitted(_submitted(world, "sub-signed"), world.deps(
        members=DictMembers(signing_member())))
    world.links.signatures[flow_of("sub-signed")] = entry
    posted = await handle_delivery(_as_record(forwarded[0], ACTS_DELIVERY.name), world.deps(
        members=DictMembers(signing_member())))
    events = decoded(s.deps.codec, posted, "relais.flows.events")
    assert [(e["state"], e["previous_state"]) for e in events] == [("posted", "signed")]
    sent = world.connector.signatures[0]
    assert sent is not None and isinstance(sent.content, bytes)
    assert base64.b64decode(sent.content) == signature


def _submitted(world: World, submission_id: str) -> FakeRecord:
    document = world.blobs.add(PDF, "deliberation.pdf")
    value = submission(submission_id, document={"blob": document, "typology": None})
    return record_of(world.codec, "ActeSubmission", value, "relais.acts.submitted",
                     flow_of(submission_id))


async def test_validation_routes_signing_members_to_signature_others_to_delivery() -> None:
    codec = AvroCodec()
    for who, topic in ((signing_member(), SIGNATURE_REQUESTS.name),
                       (member(), ACTS_DELIVERY.name)):
        world = World(codec)
        world.keep_classification()
        outputs = await handle_submitted(_submitted(world, "sub-route"),
                                         world.deps(members=DictMembers(who)))
        onward = {o.topic for o in outputs} & {SIGNATURE_REQUESTS.name, ACTS_DELIVERY.name}
        assert onward == {topic}


async def test_a_rejection_goes_back_with_the_annotation_and_the_signers_name(
    signing: Signing,
) -> None:
    s = signing
    poll = await _created(s, "sub-rejected", fate="reject_signer")
    s.clock.advance(3)
    outputs = await handle_check(_as_record(poll, SIGNATURE_STATUS.name), s.deps)
    notes = notifications(s.deps.codec, outputs)
    assert [(n["state"], n["kind"]) for n in notes] == [("rejected", "REJECTED")]
    details: dict[str, Any] = notes[0]["details"]
    assert details["annotation"] == "Délibération incomplète"
    assert details["signer"] == "Anne Maire" and details["rejected_by"] == "signer"
    assert not [o for o in outputs if o.topic == ACTS_DELIVERY.name]
    stats = (await s.http.get("/sandbox/stats")).json()
    assert stats["rejected_erased"] == 1
    # replayed after the journal: the same records, nothing asked of i-Parapheur again
    replay = await handle_check(_as_record(poll, SIGNATURE_STATUS.name), s.deps)
    assert [(o.topic, o.key) for o in replay] == [(o.topic, o.key) for o in outputs]


async def test_an_unsigned_dossier_past_its_deadline_is_reported_once(
    signing: Signing,
) -> None:
    s = signing
    poll = await _created(s, "sub-late", fate="never")
    check = s.deps.codec.decode(poll.value or b"").record
    late = {**check, "deadline": date.today() - timedelta(days=1)}
    record = FakeRecord(topic=SIGNATURE_STATUS.name,
                        value=s.deps.codec.encode("SignatureCheck", late),
                        headers=tuple(poll.headers))
    first = await handle_check(record, s.deps)
    notes = notifications(s.deps.codec, first)
    assert [(n["state"], n["kind"]) for n in notes] == [("signing", "PARTNER_MESSAGE")]
    follow = _poll(first)
    second = await handle_check(_as_record(follow, SIGNATURE_STATUS.name), s.deps)
    assert notifications(s.deps.codec, second) == []
    assert s.deps.codec.decode(_poll(second).value or b"").record["overdue_reported"] is True
