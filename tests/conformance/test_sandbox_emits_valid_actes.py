"""Every @CTES XML the sandbox TdT emits validates against the official ACTES schema.

A scenario drives the sandbox, with raw S²LOW calls, through every message it can produce
(actes with and without annexes, acknowledgements, anomalies, the four prefecture messages,
every reply S²LOW accepts and its acknowledgement, a cancellation, a classification request
answered "unchanged" then with a new classification), then each XML is checked against
``../shared/reference/actes/actesv1_1.xsd``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from relais.actes.archive import read_transmission
from relais.actes.xml_parse import parse_message
from relais.actes.xsd import validate_actes_xml
from relais.documents import sample_pdf
from sandbox.tdt import Faults, SandboxConfig, Schedule, create_tdt_sandbox

BASE = "http://tdt.sandbox"
ACTES = f"{BASE}/modules/actes"
SCHEDULE = Schedule(
    transmit_after=1,
    acknowledge_after=5,
    prefecture_message_after=20,
    cancel_acknowledge_after=5,
    reply_acknowledge_after=5,
)
EVERY_TYPE = {
    "1-1", "1-2", "1-3", "2-1", "2-2", "3-1", "3-3", "3-4", "3-5",
    "4-1", "4-3", "4-4", "4-5", "5-1", "6-1", "6-2", "7-1", "7-2", "7-3",
    "enveloppe-cl", "enveloppe-misill",
}  # fmt: skip
# type_envoie per prefecture message type (S²LOW: 3 refus, 4 envoi; any for a courrier simple)
REPLIES = {"2": ("4",), "3": ("3", "4"), "4": ("3", "4")}
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


def _acte(index: int) -> tuple[dict[str, object], list[tuple[str, tuple[str, bytes, str]]]]:
    nature = index % 6 + 1
    annexes = index % 3
    matieres = MATIERES[index % len(MATIERES)]
    fields: dict[str, object] = {
        "api": "1",
        "nature_code": str(nature),
        "number": f"CONF_{index:03d}",
        "subject": f"Acte n°{index} : « objet » avec accents éèà".encode("iso-8859-1"),
        "decision_date": date(2024, 5, 1 + index).isoformat(),
        "document_papier": "1" if index % 2 == 0 else "0",
        "type_acte": TYPOLOGY[nature],
        "type_pj[]": ["99_AU"] * annexes,
        **{f"classif{n}": str(code) for n, code in enumerate(matieres, start=1)},
    }
    files = [
        ("acte_pdf_file", (f"acte {index}.pdf", sample_pdf(f"Acte {index}"), "application/pdf"))
    ]
    files += [
        ("acte_attachments[]", (f"annexe-{n}.pdf", sample_pdf(f"Annexe {n}"), "application/pdf"))
        for n in range(1, annexes + 1)
    ]
    return fields, files


def _ok_id(response: httpx.Response) -> str:
    assert response.status_code == 200 and response.content.startswith(b"OK\n"), response.content
    return response.content.split(b"\n")[1].decode()


def _status(body: bytes) -> tuple[int, bytes]:
    """The state and the return file of an ``actes_transac_get_status.php`` answer."""
    _, state, rest = body.split(b"\n", 2)
    if int(state) == -1:
        rest = rest[: rest.rindex(b">") + 1]
    return int(state), rest


async def test_every_xml_the_sandbox_emits_is_schema_valid(reference_dir: Path) -> None:
    assert (reference_dir / "actes" / "actesv1_1.xsd").is_file()
    faults = Faults(prefecture_message_rate=1.0, anomaly_rate=0.2)
    config = SandboxConfig(schedule=SCHEDULE, faults=faults, seed=7)
    clock = Clock()
    app = create_tdt_sandbox(config, clock=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), auth=("demo", "demo"))
    emitted: dict[str, bytes] = {}

    def keep(origin: str, xml: bytes) -> None:
        emitted[origin] = xml

    async with client:
        fetched = await client.get(f"{ACTES}/actes_classification_fetch.php", params={"api": "1"})
        keep("classification", fetched.content.removesuffix(b"\r\n"))
        acte_ids = []
        for i in range(24):
            fields, files = _acte(i)
            response = await client.post(
                f"{ACTES}/actes_transac_create.php", data=fields, files=files
            )
            acte_ids.append(_ok_id(response))
        unchanged = _ok_id(
            await client.get(f"{ACTES}/actes_classification_request.php", params={"api": "1"})
        )
        clock.advance(SCHEDULE.acknowledge_after)
        states = {}
        for tid in acte_ids:
            answer = await client.get(
                f"{ACTES}/actes_transac_get_status.php", params={"transaction": tid}
            )
            states[tid] = _status(answer.content)[0]
        acknowledged = [tid for tid, state in states.items() if state == 4]
        _ok_id(
            await client.post(
                f"{ACTES}/actes_transac_cancel.php", data={"api": "1", "id": acknowledged[0]}
            )
        )
        await client.post(f"{BASE}/sandbox/classification", json={"date_version": "2024-06-01"})
        clock.advance(SCHEDULE.prefecture_message_after + 86400)
        changed = _ok_id(
            await client.get(f"{ACTES}/actes_classification_request.php", params={"api": "1"})
        )
        assert changed != unchanged

        answered: set[str] = set()
        rows = (await client.get(f"{ACTES}/api/list_document_prefecture.php")).json()
        for row in rows:
            kind = row["type"]
            if kind in REPLIES and kind not in answered:
                answered.add(kind)
                for type_envoie in REPLIES[kind]:
                    _ok_id(
                        await client.post(
                            f"{ACTES}/actes_transac_reponse_create.php",
                            data={
                                "api": "1",
                                "id": str(row["id"]),
                                "type_envoie": type_envoie,
                                "type_acte": "99_AU",
                            },
                            files=[
                                (
                                    "acte_pdf_file",
                                    ("reponse.pdf", sample_pdf("R"), "application/pdf"),
                                )
                            ],
                        )
                    )
            redirect = await client.get(
                f"{ACTES}/actes_transac_get_document.php", params={"id": str(row["id"])}
            )
            assert redirect.status_code == 302
            archive = await client.get(f"{ACTES}/{redirect.headers['location']}")
            for name, xml in _xml_members(archive.content):
                keep(f"document {row['id']}/{name}", xml)
        clock.advance(SCHEDULE.reply_acknowledge_after + SCHEDULE.acknowledge_after)

        state = app.state.tdt
        for tid in sorted(state.transactions):
            answer = await client.get(
                f"{ACTES}/actes_transac_get_status.php", params={"transaction": str(tid)}
            )
            status, document = _status(answer.content)
            if document:
                keep(f"status {tid} ({status})", document)
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
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), auth=("demo", "demo"))
    async with client:
        fields, files = _acte(seed + 4)
        tid = _ok_id(
            await client.post(f"{ACTES}/actes_transac_create.php", data=fields, files=files)
        )
        clock.advance(SCHEDULE.acknowledge_after)
        answer = await client.get(
            f"{ACTES}/actes_transac_get_status.php", params={"transaction": tid}
        )
        archive = await client.get(f"{BASE}/sandbox/transmissions/{tid}")
    acte = next(
        parse_message(xml) for _, xml in _xml_members(archive.content) if b"actes:Acte " in xml
    )
    status, document = _status(answer.content)
    assert status == 4 and validate_actes_xml(document) == []
    ar = parse_message(document)
    for key in ("decision_date", "numero_interne", "nature_code", "matieres", "objet", "annexes"):
        assert ar.fields[f"acte_recu.{key}"] == acte.fields[key]
