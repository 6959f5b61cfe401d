"""The sandbox TdT's look-ups by number and IDActe (indexed, as S²LOW's database is)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx

from connectors.tdt import ActeForm, S2lowConnector, UploadFile
from relais.documents import sample_pdf
from relais.errors import PartnerRefusedError
from sandbox.tdt import SandboxAccount, SandboxConfig, create_tdt_sandbox

BASE = "http://tdt.sandbox"
ACCOUNTS = (
    SandboxAccount(login="mairie", password="pw", siren="210600235", department="006"),
    SandboxAccount(login="autre", password="pw2", siren="217100072", department="071"),
)
PDF = sample_pdf("Deliberation")


def form(number: str) -> ActeForm:
    return ActeForm(nature_code=1, number=number, subject="Deliberation",
                    decision_date=date(2024, 2, 28), classification=(7, 1), type_acte="99_DE")


async def test_numbers_are_unique_per_authority_and_actes_found_by_id_acte() -> None:
    async def no_sleep(seconds: float) -> None:
        return None

    app = create_tdt_sandbox(SandboxConfig(accounts=ACCOUNTS),
                             clock=lambda: datetime(2024, 3, 1, 9, tzinfo=UTC), sleep=no_sleep)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, auth=("mairie", "pw")) as mine, \
            httpx.AsyncClient(transport=transport, auth=("autre", "pw2")) as other:
        connector = S2lowConnector(mine, base_url=BASE)
        first = await connector.post_acte(form("D2024_001"), [UploadFile("d.pdf", PDF)])
        for number in ("D2024_002", "D2024_003"):
            await connector.post_acte(form(number), [UploadFile("d.pdf", PDF)])
        refused = None
        try:
            await connector.post_acte(form("D2024_002"), [UploadFile("d.pdf", PDF)])
        except PartnerRefusedError as exc:
            refused = exc
        assert refused is not None and "même numéro interne existe déjà" in refused.message
        # another authority may use the same number
        await S2lowConnector(other, base_url=BASE).post_acte(
            form("D2024_002"), [UploadFile("d.pdf", PDF)])
        state = app.state.tdt
        acte = state.transaction(first.transaction_id)
        assert state.by_unique_id(acte.id_acte) is acte
        assert state.by_unique_id("006-210600235-20240301-UNKNOWN-DE") is None
        assert state.number_taken("mairie", "D2024_003")
        assert not state.number_taken("mairie", "D2024_004")
        assert state.same_acte("autre", "D2024_002") and not state.same_acte("autre", "D2024_001")
        by_unique = await mine.get(f"{BASE}/modules/actes/actes_transac_get_status.php",
                                   params={"unique_id": acte.id_acte})
        assert by_unique.content.startswith(b"OK\n1\n")
        stats = state.stats()["members"]
        assert stats["mairie"]["duplicate_posts"] == 1
        assert stats["mairie"]["transactions_created"] == 3
        assert stats["autre"]["transactions_created"] == 1
        state.reset()
        assert state.by_unique_id(acte.id_acte) is None
        assert not state.number_taken("mairie", "D2024_001")
