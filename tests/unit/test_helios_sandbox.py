"""The Hélios connector against the sandbox TdT's Hélios pages (in process, a moved clock):
both written from S²LOW's source, so the two readings must agree; and the sandbox
comptable's PES_ACQUIT on each chosen check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from connectors.tdt.helios import DUPLICATE_CODE, HeliosConnector, HeliosStatus
from relais.errors import PartnerRefusedError, PartnerTransientError
from relais.pes.acquit import AcquitOutcome, PesAcquit, read_acquit
from sandbox.tdt import SandboxAccount, SandboxConfig, Schedule, create_tdt_sandbox
from tests.unit.test_pes_checks import signed_whole_file

BASE = "http://tdt.sandbox"
SAMPLE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes" / "samples" / (
    "pastell_PES_ex.xml")
SCHEDULE = Schedule(accept_after=1, transmit_after=2, acknowledge_after=10,
                    prefecture_message_after=60)
ACCOUNTS = (
    SandboxAccount(login="sicoval", password="pw", siren="243100633", department="031"),
    SandboxAccount(login="other", password="pw2", siren="210600235", department="006"),
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Box:
    clock: Clock
    connector: HeliosConnector
    control: httpx.AsyncClient

    async def knobs(self, **changes: Any) -> None:
        answer = await self.control.post("/sandbox/helios/knobs", json=changes)
        assert answer.status_code == 200, answer.text

    async def acquit_of(self, content: bytes, name: str = "pes.xml") -> tuple[str, PesAcquit]:
        imported = await self.connector.import_pes(content, name)
        self.clock.now += timedelta(seconds=11)
        status = await self.connector.get_pes_status(imported.transaction_id)
        assert status.status == HeliosStatus.INFORMATION_AVAILABLE, status
        return imported.transaction_id, read_acquit(
            await self.connector.get_acquit(imported.transaction_id))


@asynccontextmanager
async def helios(login: str = "sicoval") -> AsyncIterator[Box]:
    clock = Clock()

    async def no_sleep(_: float) -> None:
        return None

    app = create_tdt_sandbox(SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS), clock=clock,
                             sleep=no_sleep)
    password = next(a.password for a in ACCOUNTS if a.login == login)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, auth=(login, password),
                               follow_redirects=False)
    control = httpx.AsyncClient(transport=transport, base_url=BASE)
    async with client, control:
        yield Box(clock, HeliosConnector(client, base_url=BASE, sleep=no_sleep), control)


def pes(nom_fic: str = "SICOVAL201512104", *, bordereaux: int = 1, cod_bud: str = "00") -> bytes:
    """The Pastell sample, renamed, with ``bordereaux`` bordereaux (IdBord 2372, 2373…)."""
    assert SAMPLE.is_file(), f"reference sample missing: {SAMPLE}"
    root = etree.fromstring(SAMPLE.read_bytes())
    next(root.iter("NomFic")).set("V", nom_fic)
    next(root.iter("CodBud")).set("V", cod_bud)
    first = next(root.iter("Bordereau"))
    for n in range(1, bordereaux):
        copy = etree.fromstring(etree.tostring(first))
        copy.set("Id", f"{first.get('Id')}-{n}")
        next(copy.iter("IdBord")).set("V", str(2372 + n))
        first.getparent().append(copy)  # type: ignore[union-attr]
    raw = etree.tostring(root.getroottree(), xml_declaration=True, encoding="ISO-8859-1")
    assert isinstance(raw, bytes)
    return raw


async def test_accepted_file_goes_1_2_3_8_with_an_acquit() -> None:
    async with helios() as box:
        imported = await box.connector.import_pes(pes(), "SICOVAL201512104.xml")
        states = [(await box.connector.get_pes_status(imported.transaction_id)).status]
        for seconds in (1, 1, 8):
            box.clock.now += timedelta(seconds=seconds)
            states.append((await box.connector.get_pes_status(imported.transaction_id)).status)
        assert states == [1, 2, 3, 8]
        acquit = read_acquit(await box.connector.get_acquit(imported.transaction_id))
        assert acquit.outcome is AcquitOutcome.ACKNOWLEDGED
        assert [(e.domain, e.bordereau, e.exercice) for e in acquit.elements] == [
            ("5", "2372", "2015")]
        assert (acquit.nom_fic, acquit.id_coll) == ("SICOVAL201512104", "24310063300011")


async def test_same_bytes_twice_is_refused_and_found_again() -> None:
    async with helios() as box:
        first = await box.connector.import_pes(pes(), "a.xml")
        with pytest.raises(PartnerRefusedError) as caught:
            await box.connector.import_pes(pes(), "b.xml")
        assert caught.value.reasons[0].code == DUPLICATE_CODE
        assert await box.connector.find_pes(pes(), after_id=0) == first.transaction_id
        assert await box.connector.find_pes(pes("OTHER"), after_id=0) is None


async def test_duplicate_bordereau_is_rejected_by_the_comptable() -> None:
    async with helios() as box:
        _, first = await box.acquit_of(pes("F1"))
        _, second = await box.acquit_of(pes("F2"))
        assert first.outcome is AcquitOutcome.ACKNOWLEDGED
        assert second.outcome is AcquitOutcome.REJECTED
        assert [e.code for e in second.elements[0].errors] == ["ERREUR_DOUBLON_BORDEREAU"]


async def test_wrong_siret_is_rejected() -> None:
    async with helios("other") as box:
        _, acquit = await box.acquit_of(pes())
        assert acquit.outcome is AcquitOutcome.REJECTED
        assert [e.code for e in acquit.elements[0].errors] == ["ERREUR_SIRET"]


async def test_unknown_budget_is_rejected() -> None:
    async with helios() as box:
        _, acquit = await box.acquit_of(pes(cod_bud="99"))
        assert [e.code for e in acquit.elements[0].errors] == ["ERREUR_CODE_COLLECTIVITE_BUDGET"]


async def test_partial_and_ko_draws() -> None:
    async with helios() as box:
        await box.knobs(partial_rate=1.0)
        _, partial = await box.acquit_of(pes("P1", bordereaux=2))
        assert partial.outcome is AcquitOutcome.PARTIALLY_ACCEPTED
        assert [e.accepted for e in partial.elements] == [True, False]
        error = partial.elements[1].all_errors()[0]
        assert (error.code, error.rule_code) == ("ERREUR_AUTRE", "1971")
        assert partial.elements[1].pieces[0].lines[0].line == "1"
        await box.knobs(partial_rate=0.0, ko_rate=1.0)
        _, ko = await box.acquit_of(pes("K1", bordereaux=3).replace(b'"2372"', b'"2380"'))
        assert ko.outcome is AcquitOutcome.REJECTED


async def test_tampered_signature_stops_at_s2low_or_at_helios() -> None:
    tampered = signed_whole_file().replace(b'<MtHT V="55.22"/>', b'<MtHT V="1.00"/>')
    async with helios() as box:
        imported = await box.connector.import_pes(tampered, "t.xml")
        box.clock.now += timedelta(seconds=11)
        status = await box.connector.get_pes_status(imported.transaction_id)
        assert status.status == HeliosStatus.ERROR
        assert "signature" in status.message
        await box.knobs(signature_check="helios")
        _, acquit = await box.acquit_of(tampered + b"\n")
        assert [e.code for e in acquit.elements[0].errors] == ["ERREUR_SIGNATURE_INVALIDE"]


async def test_pes_retour_listed_twice_fetched_and_marked_read() -> None:
    async with helios() as box:
        await box.knobs(retour_rate=1.0, duplicate_rate=1.0)
        await box.connector.import_pes(pes(), "r.xml")
        box.clock.now += timedelta(seconds=80)
        rows = await box.connector.list_pes_retour()
        assert len(rows) == 2
        assert rows[0].name.endswith(".xml")
        content = await box.connector.get_pes_retour(rows[0].retour_id)
        assert b"PES_Retour" in content
        for row in rows:
            await box.connector.mark_pes_retour_read(row.retour_id)
        assert await box.connector.list_pes_retour() == []
        with pytest.raises(PartnerRefusedError):
            await box.connector.get_pes_retour("999")


async def test_transport_faults_apply_to_helios_pages() -> None:
    async with helios() as box:
        answer = await box.control.post("/sandbox/faults", json={"error_rate": 1.0})
        assert answer.status_code == 200
        with pytest.raises(PartnerTransientError):
            await box.connector.import_pes(pes(), "f.xml")
