"""pes-validation on fakes: a good PES_Aller goes to delivery; each refusal names its element;
a signed file with a tampered body is refused before sending."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from agents.pes.deps import JOURNAL_KEYS, SIGNATURE_OPTION, PesDeps
from agents.pes.flow import PES
from agents.pes.validation import handle_submitted
from relais.flows.kit import routes_of
from relais.flows.outbound import Outbound
from relais.identifiers import luhn_check_digit
from relais.journal.entry import JournalEntry
from relais.journal.view import JournalIndex
from relais.pes.xml_safe import PesLimits
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    SIREN,
    DictMembers,
    FakeBlobs,
    flow_events,
    flow_of,
    member,
    notifications,
    record_of,
)
from tests.unit.test_pes_checks import signed_whole_file
from topics.journal import DELIVERY_JOURNAL
from topics.pes import PES_DELIVERY, PES_SUBMITTED

SAMPLE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes" / "samples" / (
    "pastell_PES_ex.xml")
SIRET = SIREN + "0001" + luhn_check_digit(SIREN + "0001")


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


class Journal:
    """The journal view without Kafka: entries by flow id and the real index."""

    def __init__(self) -> None:
        self.by_flow: dict[str, JournalEntry] = {}
        self.index = JournalIndex(JOURNAL_KEYS)

    def get(self, flow_id: str) -> JournalEntry | None:
        return self.by_flow.get(flow_id)

    def put_local(self, entry: JournalEntry) -> None:
        self.by_flow[entry.flow_id] = entry
        self.index.update(entry.flow_id, entry)

    def flow_of(self, member_siren: str, key_name: str, value: str) -> str | None:
        return self.index.flow_of(member_siren, key_name, value)

    def entries(self) -> list[JournalEntry]:
        return list(self.by_flow.values())


def _ours(raw: bytes) -> bytes:
    """The sample (or a signed copy) as the member's own file: IdColl is a SIRET of SIREN."""
    return raw.replace(b"24310063300011", SIRET.encode())


async def _validate(codec: AvroCodec, content: bytes, *, signature_required: bool = False,
                    limits: PesLimits | None = None, journal: Journal | None = None,
                    submission_id: str = "pes-1") -> list[Outbound]:
    blobs = FakeBlobs()
    blob = blobs.add(content, "pes.xml", "text/xml")
    someone = member()
    if signature_required:
        assert someone.tdt is not None
        tdt = dataclasses.replace(someone.tdt, options={**someone.tdt.options,
                                                        SIGNATURE_OPTION: "true"})
        someone = dataclasses.replace(someone, accounts={"tdt": tdt})
    submission: dict[str, Any] = {"submission_id": submission_id, "member_siren": SIREN,
                                  "pes_aller": blob}
    record = record_of(codec, "PesSubmission", submission, PES_SUBMITTED.name,
                       flow_of(submission_id))
    deps = PesDeps(codec=codec, members=DictMembers(someone), blobs=blobs,
                   journal=journal if journal is not None else Journal(),
                   limits=limits or PesLimits())
    return await handle_submitted(record, deps)


def _reasons(codec: AvroCodec, outputs: list[Outbound]) -> list[tuple[str, str]]:
    [note] = notifications(codec, outputs)
    assert note["kind"] == "REJECTED"
    assert not [o for o in outputs if o.topic == PES_DELIVERY.name]
    return [(r["field"], r["code"]) for r in note["reasons"]]


async def test_a_good_pes_aller_goes_to_delivery(codec: AvroCodec) -> None:
    journal = Journal()
    outputs = await _validate(codec, _ours(SAMPLE.read_bytes()), journal=journal)
    assert [o.topic for o in outputs if o.topic == PES_DELIVERY.name] == [PES_DELIVERY.name]
    [event] = flow_events(codec, outputs)
    assert (event["state"], event["flow_type"]) == ("validated", "pes")
    entry = journal.get(flow_of("pes-1"))
    assert entry is not None
    assert (entry.step, entry.keys["nom_fic"]) == ("VALIDATED", "SICOVAL201512104")
    assert [o.topic for o in outputs if o.topic == DELIVERY_JOURNAL.name] == [
        DELIVERY_JOURNAL.name]
    assert await _validate(codec, _ours(SAMPLE.read_bytes()), journal=journal) == []


async def test_the_same_file_or_nomfic_again_is_a_duplicate(codec: AvroCodec) -> None:
    journal = Journal()
    content = _ours(SAMPLE.read_bytes())
    await _validate(codec, content, journal=journal)
    again = await _validate(codec, content, journal=journal, submission_id="pes-2")
    assert _reasons(codec, again) == [("pes_aller", "pes_duplicate_content")]
    renamed = content.replace(b'<MtHT V="55.22"/>', b'<MtHT V="55.21"/>')
    same_name = await _validate(codec, renamed, journal=journal, submission_id="pes-3")
    assert _reasons(codec, same_name) == [
        ("pes_aller.Enveloppe/Parametres/NomFic", "pes_duplicate_nomfic")]


async def test_another_bodys_siret_is_refused_naming_idcoll(codec: AvroCodec) -> None:
    outputs = await _validate(codec, SAMPLE.read_bytes())
    assert _reasons(codec, outputs) == [("pes_aller.EnTetePES/IdColl", "pes_idcoll_not_member")]


async def test_unsigned_file_refused_when_the_member_requires_signatures(
        codec: AvroCodec) -> None:
    outputs = await _validate(codec, _ours(SAMPLE.read_bytes()), signature_required=True)
    assert _reasons(codec, outputs) == [("pes_aller.Signature", "pes_signature_missing")]


async def test_signed_file_with_tampered_body_is_refused_before_sending(
        codec: AvroCodec) -> None:
    signed = signed_whole_file(unsigned=_ours(SAMPLE.read_bytes()))
    good = await _validate(codec, signed, signature_required=True)
    assert [o.topic for o in good if o.topic == PES_DELIVERY.name] == [PES_DELIVERY.name]
    tampered = signed.replace(b'<MtHT V="55.22"/>', b'<MtHT V="1.00"/>')
    outputs = await _validate(codec, tampered, signature_required=True)
    assert _reasons(codec, outputs) == [
        ("pes_aller.PES_Aller[Id=SICOVAL201512104]/Signature", "pes_signature_tampered")]


async def test_not_xml_and_too_large_are_refused(codec: AvroCodec) -> None:
    assert _reasons(codec, await _validate(codec, b"not xml")) == [
        ("pes_aller.xml", "pes_xml_unreadable")]
    outputs = await _validate(codec, SAMPLE.read_bytes(), limits=PesLimits(max_bytes=100))
    assert _reasons(codec, outputs) == [("pes_aller", "too_large")]


def test_the_flow_routes_pes_submissions() -> None:
    assert routes_of([PES])["PesSubmission"].topic is PES_SUBMITTED
    assert PES.stage_names() == ("pes-validation", "pes-delivery", "pes-status", "pes-retours")


def test_the_pes_flow_is_one_of_the_hubs_flows() -> None:
    from hub.flows import FLOWS
    from relais.flows.kit import check_declarations
    from topics.catalogue import hub_topics

    assert PES in FLOWS
    check_declarations(FLOWS)
    others = tuple(flow for flow in FLOWS if flow is not PES)
    names = {spec.name for spec in hub_topics("hub", FLOWS)} - {
        spec.name for spec in hub_topics("hub", others)}
    assert names == {"relais.pes.submitted", "relais.pes.delivery", "relais.pes.status",
                     "relais.dlq.pes-validation", "relais.dlq.pes-delivery",
                     "relais.dlq.pes-status", "relais.dlq.pes-retours"}
