"""Cross-check: the connector against the sandbox TdT, both written from S²LOW's source.

The connector's own fixtures (``test_tdt_connector.py``) are S²LOW's answers byte for
byte; the sandbox was written separately from the same PHP pages. Driving one with the
other (in process, ``httpx.ASGITransport``, a hand-moved clock) shows that the two
readings agree on every call the hub makes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from connectors.tdt import ActeForm, S2lowConnector, UploadFile
from relais.actes.archive import read_transmission
from relais.documents import sample_pdf
from relais.errors import (
    PartnerAuthError,
    PartnerRefusedError,
    Reason,
    ValidationError,
)
from sandbox.tdt import SandboxAccount, SandboxConfig, Schedule, create_tdt_sandbox

BASE = "http://tdt.sandbox"
SCHEDULE = Schedule(
    transmit_after=2,
    acknowledge_after=10,
    prefecture_message_after=60,
    cancel_acknowledge_after=5,
    reply_acknowledge_after=5,
)
ACCOUNTS = (SandboxAccount(login="mairie", password="pw", siren="210600235", department="006"),)
PDF = sample_pdf("Deliberation du conseil municipal")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Box:
    clock: Clock
    connector: S2lowConnector


@asynccontextmanager
async def tdt(
    config: SandboxConfig | None = None, *, wrong_password: bool = False
) -> AsyncIterator[Box]:
    clock = Clock()

    async def no_sleep(seconds: float) -> None:
        return None

    app = create_tdt_sandbox(
        config or SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS), clock=clock, sleep=no_sleep
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        auth=("mairie", "wrong" if wrong_password else ACCOUNTS[0].password),
        follow_redirects=False,
    )
    async with client:
        yield Box(clock, S2lowConnector(client, base_url=BASE))


def form(number: str = "D2024_001", **changes: object) -> ActeForm:
    values: dict[str, object] = {
        "nature_code": 1,
        "number": number,
        "subject": "Délibération approuvant le budget primitif",
        "decision_date": date(2024, 2, 28),
        "classification": (7, 1, 1),
        "type_acte": "99_DE",
    }
    values.update(changes)
    return ActeForm(**values)  # type: ignore[arg-type]


async def test_posted_acknowledged_found_and_stamped() -> None:
    async with tdt() as box:
        posted = await box.connector.post_acte(form(), [UploadFile("deliberation.pdf", PDF)])
        assert (await box.connector.get_status(posted.transaction_id)).status == 1
        found = await box.connector.find_acte(number="D2024_001", decision_date=date(2024, 2, 28))
        assert found == posted.transaction_id
        other_day = await box.connector.find_acte(
            number="D2024_001", decision_date=date(2024, 2, 27)
        )
        assert other_day is None
        with pytest.raises(PartnerRefusedError) as early:
            await box.connector.get_stamped_acte(posted.transaction_id)
        assert early.value.message == "Pas d'acquittement recu"
        box.clock.advance(SCHEDULE.acknowledge_after)
        status = await box.connector.get_status(posted.transaction_id)
        assert status.status == 4 and status.is_final
        stamped = await box.connector.get_stamped_acte(posted.transaction_id)
        assert stamped.startswith(b"%PDF-") and len(stamped) > len(PDF)
        assert (
            await box.connector.find_acte(number="D2024_001", decision_date=date(2024, 2, 28))
            == posted.transaction_id
        )


async def test_a_number_already_used_is_refused_in_s2low_words() -> None:
    async with tdt() as box:
        await box.connector.post_acte(form(), [UploadFile("deliberation.pdf", PDF)])
        with pytest.raises(PartnerRefusedError) as caught:
            await box.connector.post_acte(form(), [UploadFile("deliberation.pdf", PDF)])
        assert "même numéro interne existe déjà" in caught.value.message
        assert caught.value.reasons == [Reason("acte", "tdt_refused", caught.value.message)]


async def test_a_future_decision_date_is_refused() -> None:
    async with tdt() as box:
        with pytest.raises(PartnerRefusedError) as caught:
            await box.connector.post_acte(
                form(decision_date=date(2024, 3, 5)), [UploadFile("d.pdf", PDF)]
            )
        assert caught.value.message == "La date de décision est une date dans le futur"


async def test_a_lowercase_number_never_reaches_the_tdt() -> None:
    async with tdt() as box:
        with pytest.raises(ValidationError):
            await box.connector.post_acte(form("d2024_001"), [UploadFile("d.pdf", PDF)])
        assert (
            await box.connector.find_acte(number="d2024_001", decision_date=date(2024, 2, 28))
            is None
        )


async def test_an_acte_never_posted_is_proved_absent() -> None:
    async with tdt() as box:
        await box.connector.post_acte(form("D2024_002"), [UploadFile("d.pdf", PDF)])
        assert (
            await box.connector.find_acte(number="D2024_001", decision_date=date(2024, 2, 28))
            is None
        )


async def test_a_prefecture_letter_is_listed_downloaded_through_the_redirect_and_marked_read() -> (
    None
):
    plain = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("2-1",))
    config = dataclasses.replace(
        plain, faults=plain.faults.updated({"prefecture_message_rate": 1.0})
    )
    async with tdt(config) as box:
        posted = await box.connector.post_acte(form(), [UploadFile("deliberation.pdf", PDF)])
        box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
        (ref,) = await box.connector.list_prefecture_documents()
        assert (ref.type, ref.related_transaction_id) == ("2", posted.transaction_id)
        archive = await box.connector.get_prefecture_document(ref.id)
        assert archive.startswith(b"\x1f\x8b")
        chunks: list[bytes] = []

        async def store(stream: AsyncIterator[bytes]) -> int:
            chunks.extend([chunk async for chunk in stream])
            return len(chunks)

        assert await box.connector.save_prefecture_document(ref.id, store) >= 1
        assert b"".join(chunks) == archive  # the same file, streamed
        members = read_transmission(archive)
        assert any(name.endswith("-2-1_0.xml") for name in members)
        await box.connector.mark_prefecture_document_read(ref.id)
        assert await box.connector.list_prefecture_documents() == []
        reply = await box.connector.post_reply(
            ref.id, "2-2", None, [UploadFile("reponse.pdf", PDF)]
        )
        assert reply.transaction_id.isdigit()


async def test_a_wrong_password_is_an_auth_error_naming_the_tdt() -> None:
    async with tdt(wrong_password=True) as box:
        with pytest.raises(PartnerAuthError) as posting:
            await box.connector.post_acte(form(), [UploadFile("d.pdf", PDF)])
        assert BASE in posting.value.message
        with pytest.raises(PartnerAuthError):
            await box.connector.find_acte(number="D2024_001", decision_date=date(2024, 2, 28))
