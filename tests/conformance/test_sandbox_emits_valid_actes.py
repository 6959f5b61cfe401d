"""Every @CTES XML the sandbox TdT emits validates against the official ACTES schema.

A scenario drives the sandbox through every message it can produce (actes with
and without annexes, acknowledgements, anomalies, the four prefecture messages,
every member reply and its acknowledgement, a cancellation, the
classification), then each XML is checked against
``../shared/reference/actes/actesv1_1.xsd``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.tdt import ActeForm, S2lowConnector, UploadFile, build_tdt_client
from relais.actes.archive import read_transmission
from relais.actes.xml_parse import parse_message
from relais.actes.xsd import validate_actes_xml
from sandbox.tdt import Faults, SandboxConfig, Schedule, create_tdt_sandbox
from sandbox.tdt.messages import sample_pdf

BASE = "http://tdt.sandbox"
SCHEDULE = Schedule(
    transmit_after=1,
    acknowledge_after=5,
    prefecture_message_after=20,
    cancel_acknowledge_after=5,
    reply_acknowledge_after=5,
)
EVERY_TYPE = {
    "1-1", "1-2", "1-3", "2-1", "2-2", "3-1", "3-2", "3-3", "3-4", "3-5",
    "4-1", "4-2", "4-3", "4-4", "4-5", "5-1", "6-1", "6-2", "7-2",
    "enveloppe-cl", "enveloppe-misill",
}  # fmt: skip
REPLIES = {"2-1": ("2-2",), "3-1": ("3-2", "3-3", "3-4"), "4-1": ("4-2", "4-3", "4-4")}
MATIERES = ((1, 1), (2, 3), (3, 2), (4, 1), (5, 2), (6, 1), (7, 1, 2), (8, 3), (9, 4), (7, 5, 1))
TYPOLOGY = {1: "99_DE", 2: "99_AR", 3: "99_AI", 4: "99_CO", 5: "99_BF", 6: "99_AU"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 6, 3, 8, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_the_schema_oracle_is_present_and_strict(reference_dir: Path) -> None:
    samples = reference_dir / "actes" / "samples"
    assert (
        validate_actes_xml((samples / "006-210600235-20180522-684-AI-1-2_5279.xml").read_bytes())
        == []
    )
    # SOURCES.md: the real classification sample lacks TypePJNatureActe and must fail.
    assert validate_actes_xml((samples / "exemple_codes_matieres.xml").read_bytes()) != []


def _acte(index: int) -> tuple[ActeForm, list[UploadFile]]:
    nature = index % 6 + 1
    annexes = index % 3
    form = ActeForm(
        nature_code=nature,
        number=f"CONF_{index:03d}",
        subject=f"Acte n°{index} : « objet » avec accents éèà et œuvre",
        decision_date=date(2024, 5, 1 + index),
        classification=MATIERES[index % len(MATIERES)],
        document_papier=index % 2 == 0,
        type_acte=TYPOLOGY[nature],
        type_pj=("99_AU",) * annexes,
    )
    files = [UploadFile(f"acte {index}.pdf", sample_pdf(f"Acte {index}"))]
    files += [
        UploadFile(f"annexe-{n}.pdf", sample_pdf(f"Annexe {n}")) for n in range(1, annexes + 1)
    ]
    return form, files


async def test_every_xml_the_sandbox_emits_is_schema_valid(reference_dir: Path) -> None:
    assert (reference_dir / "actes" / "actesv1_1.xsd").is_file()
    faults = Faults(prefecture_message_rate=1.0, anomaly_rate=0.2)
    config = SandboxConfig(schedule=SCHEDULE, faults=faults, seed=7)
    clock = Clock()
    app = create_tdt_sandbox(config, clock=clock)
    client = build_tdt_client(
        BASE, basic_user="demo", basic_password="demo", transport=httpx.ASGITransport(app=app)
    )
    emitted: dict[str, bytes] = {}

    def keep(origin: str, xml: bytes) -> None:
        emitted[origin] = xml

    async with client:
        tdt = S2lowConnector(client, base_url=BASE)
        keep("classification", await tdt.fetch_classification())
        acte_ids = [
            (await tdt.post_acte(*_acte(i), idempotency_key=f"conf-{i}")).transaction_id
            for i in range(24)
        ]
        clock.advance(SCHEDULE.acknowledge_after)
        statuses = {tid: await tdt.get_status(tid) for tid in acte_ids}
        acknowledged = [tid for tid, s in statuses.items() if s.status == 4]
        cancelled = acknowledged[0]
        await tdt.cancel(cancelled)
        clock.advance(SCHEDULE.prefecture_message_after)

        answered: set[str] = set()
        for ref in await tdt.list_prefecture_documents():
            if ref.type_code in REPLIES and ref.type_code not in answered:
                answered.add(ref.type_code)
                for reply_type in REPLIES[ref.type_code]:
                    await tdt.post_reply(
                        ref.id, reply_type, None, [UploadFile("reponse.pdf", sample_pdf("R"))]
                    )
            for name, xml in _xml_members(await tdt.get_prefecture_document(ref.id)):
                keep(f"document {ref.id}/{name}", xml)
        clock.advance(SCHEDULE.reply_acknowledge_after)

        state = app.state.tdt
        for tid in sorted(state.transactions):
            status = await tdt.get_status(str(tid))
            if status.document is not None:
                keep(f"status {tid} ({status.status})", status.document)
            archive = await client.get(f"{BASE}/sandbox/transmissions/{tid}")
            assert archive.status_code == 200
            for name, xml in _xml_members(archive.content):
                keep(f"transmission {tid}/{name}", xml)

    failures = {
        origin: errors for origin, xml in emitted.items() if (errors := validate_actes_xml(xml))
    }
    assert failures == {}
    kinds = {parse_message(xml).type_code for xml in emitted.values()}
    assert kinds >= EVERY_TYPE, f"scenario did not produce {sorted(EVERY_TYPE - kinds)}"
    assert answered == set(REPLIES)
    assert len(emitted) > 60
    assert all(
        xml.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>") for xml in emitted.values()
    )


def _xml_members(archive: bytes) -> list[tuple[str, bytes]]:
    return [
        (name, data) for name, data in read_transmission(archive).items() if name.endswith(".xml")
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_acknowledgements_echo_the_acte_as_transmitted(seed: int) -> None:
    config = SandboxConfig(schedule=SCHEDULE, seed=seed)
    clock = Clock()
    app = create_tdt_sandbox(dataclasses.replace(config), clock=clock)
    client = build_tdt_client(
        BASE, basic_user="demo", basic_password="demo", transport=httpx.ASGITransport(app=app)
    )
    async with client:
        tdt = S2lowConnector(client, base_url=BASE)
        form, files = _acte(seed + 4)
        posted = await tdt.post_acte(form, files)
        clock.advance(SCHEDULE.acknowledge_after)
        status = await tdt.get_status(posted.transaction_id)
        archive = await client.get(f"{BASE}/sandbox/transmissions/{posted.transaction_id}")
    acte = next(
        parse_message(xml) for _, xml in _xml_members(archive.content) if b"actes:Acte " in xml
    )
    ar = status.parsed_document()
    assert ar is not None and validate_actes_xml(ar.raw) == []
    for key in ("decision_date", "numero_interne", "nature_code", "matieres", "objet", "annexes"):
        assert ar.fields[f"acte_recu.{key}"] == acte.fields[key]
