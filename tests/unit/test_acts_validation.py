"""acts-validation on fakes: the TdT's number and file name rules, reasons listed once."""

from __future__ import annotations

from typing import Any

import pytest

from agents.acts.links import ActeLink, LinkIndex
from agents.acts.validation import handle_submitted, unique_reasons
from connectors.tdt.rules import archive_size_bound
from relais.errors import Reason
from relais.flows.outbound import Outbound
from relais.journal.entry import JournalEntry
from relais.wire.avro_codec import AvroCodec
from tests.unit.acts_fakes import (
    PDF,
    World,
    flow_of,
    links_out,
    notifications,
    record_of,
    submission,
)
from topics.acts import ACTS_DELIVERY, ACTS_SUBMITTED


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


async def _validate(world: World, filename: str = "deliberation.pdf",
                    **changes: Any) -> list[Outbound]:
    document = world.blobs.add(PDF, filename)
    acte = submission(document={"blob": document, "typology": None}, **changes)
    record = record_of(world.codec, "ActeSubmission", acte, ACTS_SUBMITTED.name,
                       flow_of("sub-1"))
    world.keep_classification()
    return await handle_submitted(record, world.deps())


def _reasons(codec: AvroCodec, outputs: list[Outbound]) -> list[tuple[str, str]]:
    [note] = notifications(codec, outputs)
    assert note["kind"] == "REJECTED"
    return [(r["field"], r["code"]) for r in note["reasons"]]


async def test_a_good_acte_goes_to_delivery(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await _validate(world)
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]
    assert links_out(codec, outputs)[0]["delivery"] == "VALIDATED"
    assert [o.topic for o in outputs if o.topic == ACTS_DELIVERY.name] == [ACTS_DELIVERY.name]


@pytest.mark.parametrize("numero", ["d2026_042", "_D2026", "D2026_", "D2026-042",
                                    "ABCDEFGHIJKLMNOP"])
async def test_numbers_s2low_refuses_are_refused_before_sending(
    codec: AvroCodec, numero: str,
) -> None:
    world = World(codec)
    outputs = await _validate(world, numero_interne=numero)
    assert ("numero_interne", "number_format") in _reasons(codec, outputs)
    assert [o for o in outputs if o.topic == ACTS_DELIVERY.name] == []


@pytest.mark.parametrize("filename", ["deliberation", "../../etc/passwd", "acte.exe.txt"])
async def test_bad_file_names_are_refused_naming_the_field(
    codec: AvroCodec, filename: str,
) -> None:
    world = World(codec)
    outputs = await _validate(world, filename=filename)
    fields = {field for field, _ in _reasons(codec, outputs)}
    assert "document.blob.filename" in fields
    assert [o for o in outputs if o.topic == ACTS_DELIVERY.name] == []


async def test_an_annex_without_extension_names_the_annex(codec: AvroCodec) -> None:
    world = World(codec)
    annex = world.blobs.add(b"%PDF-1.4 annex", "annexe")
    outputs = await _validate(world, annexes=[{"blob": annex, "typology": None}])
    assert ("annexes[0].blob.filename", "extension_missing") in _reasons(codec, outputs)


@pytest.mark.parametrize("objet", ["Budget 予算 😀", "Budget 😀 et \U0001F600 予"])
async def test_charset_reason_listed_once(codec: AvroCodec, objet: str) -> None:
    world = World(codec)
    reasons = _reasons(codec, await _validate(world, objet=objet))
    assert reasons.count(("objet", "charset")) == 1


async def test_decomposed_accents_and_typographic_quotes_are_sendable(codec: AvroCodec) -> None:
    world = World(codec)
    outputs = await _validate(world, objet="De\u0301libe\u0301ration sur l’œuvre")
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]


def test_unique_reasons_keeps_the_first_of_each_field_and_code() -> None:
    reasons = [Reason("objet", "charset", "a"), Reason("objet", "charset", "b"),
               Reason("objet", "length", "c"), Reason("numero_interne", "charset", "d")]
    assert unique_reasons(reasons) == [reasons[0], reasons[2], reasons[3]]


def _entry(link: dict[str, Any]) -> JournalEntry:
    return ActeLink(**link).to_entry()


async def test_an_idacte_the_tdt_refused_is_free_for_another_submission(
    codec: AvroCodec,
) -> None:
    world = World(codec)
    index = LinkIndex("127.0.0.1:1", codec)  # never started: fed by hand like the topic
    first = await _validate(world)
    [link] = links_out(codec, first)
    index.view.apply(flow_of("sub-1").encode(),
                     codec.encode("JournalEntry", _entry(link).to_record()))
    world2 = World(codec)
    world2.keep_classification()
    document = world2.blobs.add(PDF, "deliberation.pdf")
    second = submission("sub-2", document={"blob": document, "typology": None})
    record = record_of(codec, "ActeSubmission", second, ACTS_SUBMITTED.name, flow_of("sub-2"))
    refused = await handle_submitted(record, world2.deps(links=index))
    assert ("numero_interne", "duplicate_id_acte") in _reasons(codec, refused)
    index.view.apply(flow_of("sub-1").encode(),
                     codec.encode("JournalEntry", _entry(link).moved("REFUSED").to_record()))
    accepted = await handle_submitted(record, world2.deps(links=index))
    assert [n["state"] for n in notifications(codec, accepted)] == ["validated"]


async def test_files_under_the_limit_whose_archive_is_over_it_are_refused(
    codec: AvroCodec,
) -> None:
    """S²LOW refuses the *archive* (tar.gz of the files and its XML) over its limit: a PDF a
    few KB under the limit passes a check of the files alone, then the TdT refuses it."""
    world = World(codec)
    limit = len(PDF) + 4096
    outputs = await _validate_with(world, max_acte_bytes=limit)
    assert _reasons(codec, outputs) == [("document", "archive_too_large")]
    assert [o for o in outputs if o.topic == ACTS_DELIVERY.name] == []


async def test_files_whose_archive_fits_exactly_go_to_delivery(codec: AvroCodec) -> None:
    world = World(codec)
    at_the_bound = archive_size_bound([len(PDF)])
    outputs = await _validate_with(world, max_acte_bytes=at_the_bound)
    assert [n["state"] for n in notifications(codec, outputs)] == ["validated"]
    world = World(codec)
    outputs = await _validate_with(world, max_acte_bytes=at_the_bound - 1)
    assert _reasons(codec, outputs) == [("document", "archive_too_large")]


async def _validate_with(world: World, **deps: Any) -> list[Outbound]:
    document = world.blobs.add(PDF, "deliberation.pdf")
    acte = submission(document={"blob": document, "typology": None})
    record = record_of(world.codec, "ActeSubmission", acte, ACTS_SUBMITTED.name,
                       flow_of("sub-1"))
    world.keep_classification()
    return await handle_submitted(record, world.deps(**deps))
