"""The S²LOW connector against the sandbox TdT: in process (ASGI, fake clock) and over loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.tdt import ActeForm, ReplyForm, S2lowConnector, UploadFile, build_tdt_client
from relais.actes.archive import read_transmission
from relais.actes.classification import parse_retour_classification
from relais.actes.xml_parse import parse_message
from relais.actes.xsd import validate_actes_xml
from relais.errors import (
    ConfigurationError,
    PartnerPermanentError,
    PartnerTimeoutError,
    PartnerTransientError,
)
from sandbox.tdt import Faults, SandboxAccount, SandboxConfig, Schedule, create_tdt_sandbox
from sandbox.tdt.messages import sample_pdf
from sandbox.tdt.server import running_tdt_sandbox
from sandbox.tdt.state import TdtState

BASE = "http://tdt.sandbox"
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
SCHEDULE = Schedule(
    transmit_after=2,
    acknowledge_after=10,
    prefecture_message_after=60,
    cancel_acknowledge_after=5,
    reply_acknowledge_after=5,
)
PDF = sample_pdf("Deliberation du conseil municipal")
ANNEX = sample_pdf("Annexe")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sandbox:
    app: Any
    clock: FakeClock
    client: httpx.AsyncClient
    connector: S2lowConnector
    sleeps: list[float] = field(default_factory=list)

    @property
    def state(self) -> TdtState:
        state: TdtState = self.app.state.tdt
        return state

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get(f"{BASE}/sandbox/stats")
        assert response.status_code == 200
        stats: dict[str, Any] = response.json()
        return stats

    async def set_faults(self, **knobs: Any) -> None:
        response = await self.client.post(f"{BASE}/sandbox/faults", json=knobs)
        assert response.status_code == 200, response.text


@asynccontextmanager
async def sandbox(config: SandboxConfig | None = None, **faults: Any) -> AsyncIterator[Sandbox]:
    config = config or SandboxConfig(schedule=SCHEDULE)
    if faults:
        config = dataclasses.replace(config, faults=config.faults.updated(faults))
    clock = FakeClock()
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    app = create_tdt_sandbox(config, clock=clock, sleep=fake_sleep)
    client = build_tdt_client(
        BASE,
        basic_user="demo",
        basic_password="demo",
        timeout=5.0,
        transport=httpx.ASGITransport(app=app),
    )
    async with client:
        yield Sandbox(app, clock, client, S2lowConnector(client, base_url=BASE), sleeps)


def acte(number: str = "D2024_001", **changes: Any) -> ActeForm:
    form = ActeForm(
        nature_code=1,
        number=number,
        subject="Délibération approuvant le budget primitif – école élémentaire",
        decision_date=date(2024, 2, 28),
        classification=(7, 1, 1),
        type_acte="99_DE",
        type_pj=("99_AU",),
    )
    return dataclasses.replace(form, **changes)


def files(main: bytes = PDF) -> list[UploadFile]:
    return [UploadFile("deliberation.pdf", main), UploadFile("annexe.pdf", ANNEX)]


# -- the nominal path ------------------------------------------------------------------------


async def test_post_poll_acknowledged_with_a_parsed_aracte() -> None:
    async with sandbox() as box:
        posted = await box.connector.post_acte(acte(), files(), idempotency_key="flow-1:post")
        assert posted.transaction_id == "1"

        first = await box.connector.get_status(posted.transaction_id)
        assert (first.status, first.document) == (1, None)
        box.clock.advance(SCHEDULE.transmit_after)
        assert (await box.connector.get_status(posted.transaction_id)).status == 3
        box.clock.advance(SCHEDULE.acknowledge_after - SCHEDULE.transmit_after)
        done = await box.connector.get_status(posted.transaction_id)

        assert done.status == 4 and done.is_final
        assert validate_actes_xml(done.document or b"") == []
        ar = done.parsed_document()
        assert ar is not None and ar.type_code == "1-2"
        assert ar.id_acte == "006-210600235-20240228-D2024_001-DE"
        assert ar.fields["reception_date"] == "2024-03-01"
        assert ar.fields["acte_recu.objet"] == (
            "Délibération approuvant le budget primitif - école élémentaire"
        )
        assert ar.fields["acte_recu.matieres"] == ["7", "1", "1"]
        assert ar.fields["acte_recu.annex_count"] == "1"
        stats = await box.stats()
        assert stats["transactions_created"] == 1
        assert stats["status_polls"] == 3
        assert stats["members"]["demo"]["status_polls"] == 3


async def test_the_transmission_archive_is_laid_out_like_a_tdt() -> None:
    async with sandbox() as box:
        posted = await box.connector.post_acte(acte(), files())
        response = await box.client.get(f"{BASE}/sandbox/transmissions/{posted.transaction_id}")
        assert response.status_code == 200
        assert response.headers["content-disposition"].endswith(
            'filename="SBX-EACT--210600235--20240301-1.tar.gz"'
        )
        members = read_transmission(response.content)
        assert list(members) == [
            "EACT--210600235--20240301-1.xml",
            "006-210600235-20240301-D2024_001-DE-1-1_0.xml",
            "99_DE-006-210600235-20240301-D2024_001-DE-1-1_1.pdf",
            "99_AU-006-210600235-20240301-D2024_001-DE-1-1_2.pdf",
        ]
        assert members["99_DE-006-210600235-20240301-D2024_001-DE-1-1_1.pdf"] == PDF
        message = parse_message(members["006-210600235-20240301-D2024_001-DE-1-1_0.xml"])
        assert message.type_code == "1-1"
        assert message.fields["classification_date"] == "2024-01-15"


async def test_anomaly_path_ends_in_state_minus_one_with_the_anomalie_acte() -> None:
    async with sandbox(anomaly_rate=1.0) as box:
        posted = await box.connector.post_acte(acte(), files())
        box.clock.advance(SCHEDULE.acknowledge_after)
        status = await box.connector.get_status(posted.transaction_id)
        assert status.status == -1 and status.is_final
        assert "AnomalieActe 002" in status.message
        anomaly = status.parsed_document()
        assert anomaly is not None and anomaly.type_code == "1-3"
        assert anomaly.fields["nature"] == "002"
        assert anomaly.fields["acte_recu.numero_interne"] == "D2024_001"
        # The acte can be posted again under the same number once refused.
        again = await box.connector.post_acte(acte(), files())
        assert again.transaction_id != posted.transaction_id


# -- strict validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "main", "field_name"),
    [
        (acte(number="D-2024/1"), PDF, "number"),
        (acte(number="D2024_0000000001"), PDF, "number"),
        (acte(nature_code=9), PDF, "nature_code"),
        (acte(classification=(10, 1)), PDF, "classif1"),
        (acte(classification=(7, 9)), PDF, "classif2"),
        (acte(subject="Budget\nprimitif"), PDF, "subject"),
        (acte(subject="x" * 500), PDF, "subject"),
        (acte(decision_date=date(2024, 3, 2)), PDF, "decision_date"),
        (acte(type_acte="99_AR"), PDF, "type_acte"),
        (acte(type_acte=None), PDF, "type_acte"),
        (acte(type_pj=("12_XX",)), PDF, "type_pj[0]"),
        (acte(), b"PK\x03\x04 not a pdf", "acte_pdf_file"),
    ],
)
async def test_invalid_submissions_are_refused_naming_the_field(
    form: ActeForm, main: bytes, field_name: str
) -> None:
    async with sandbox() as box:
        with pytest.raises(PartnerPermanentError) as caught:
            await box.connector.post_acte(form, files(main))
        error = caught.value
        assert error.status == 400
        assert field_name in [r.field for r in error.reasons]
        assert f"{field_name}:" in error.message
        stats = await box.stats()
        assert (stats["rejected_posts"], stats["transactions_created"]) == (1, 0)


async def test_a_subject_sent_in_utf8_is_refused() -> None:
    async with sandbox() as box:
        data = {
            "api": "1",
            "nature_code": "1",
            "number": "D1",
            "subject": "Délibération",  # httpx encodes form text as UTF-8
            "decision_date": "2024-02-28",
            "classif1": "7",
            "classif2": "1",
            "type_acte": "99_DE",
        }
        response = await box.client.post(
            f"{BASE}/modules/actes/actes_transac_create.php",
            data=data,
            files={"acte_pdf_file": ("a.pdf", PDF, "application/pdf")},
        )
        assert response.status_code == 400
        assert "subject: the subject looks UTF-8 encoded" in response.text


async def test_the_size_limit_is_enforced() -> None:
    config = SandboxConfig(schedule=SCHEDULE, max_total_bytes=len(PDF) + 100)
    async with sandbox(config) as box:
        with pytest.raises(PartnerPermanentError) as caught:
            await box.connector.post_acte(acte(), [*files()[:1], UploadFile("big.pdf", PDF)])
        assert caught.value.status == 400
        assert "files" in [r.field for r in caught.value.reasons]


async def test_wrong_credentials_are_refused() -> None:
    async with sandbox() as box:
        client = build_tdt_client(
            BASE,
            basic_user="demo",
            basic_password="wrong",
            transport=httpx.ASGITransport(app=box.app),
        )
        async with client:
            with pytest.raises(PartnerPermanentError) as caught:
                await S2lowConnector(client, base_url=BASE).get_status("1")
        assert caught.value.status == 401


async def test_accounts_only_see_their_own_transactions() -> None:
    other = SandboxAccount(login="cc", password="cc-pass", siren="214400152", department="044")
    config = SandboxConfig(accounts=(SandboxConfig().accounts[0], other), schedule=SCHEDULE)
    async with sandbox(config) as box:
        posted = await box.connector.post_acte(acte(), files())
        client = build_tdt_client(
            BASE,
            basic_user="cc",
            basic_password="cc-pass",
            transport=httpx.ASGITransport(app=box.app),
        )
        async with client:
            with pytest.raises(PartnerPermanentError) as caught:
                await S2lowConnector(client, base_url=BASE).get_status(posted.transaction_id)
        assert caught.value.status == 404


# -- idempotency and duplicates ----------------------------------------------------------------


async def test_an_idempotent_repost_creates_no_second_transaction() -> None:
    async with sandbox() as box:
        first = await box.connector.post_acte(acte(), files(), idempotency_key="flow-7:post")
        second = await box.connector.post_acte(acte(), files(), idempotency_key="flow-7:post")
        assert second.transaction_id == first.transaction_id
        stats = await box.stats()
        assert stats["posts_received"] == 2
        assert stats["transactions_created"] == 1
        assert stats["idempotent_replays"] == 1
        assert stats["duplicate_posts"] == 0
        assert stats["members"]["demo"]["transactions_created"] == 1


async def test_a_repost_without_the_key_is_counted_and_refused_like_s2low() -> None:
    async with sandbox() as box:
        first = await box.connector.post_acte(acte(), files(), idempotency_key="flow-7:post")
        with pytest.raises(PartnerPermanentError) as caught:
            await box.connector.post_acte(acte(), files())
        assert [r.field for r in caught.value.reasons] == ["number"]
        assert f"transaction {first.transaction_id}" in caught.value.message
        stats = await box.stats()
        assert (stats["duplicate_posts"], stats["transactions_created"]) == (1, 1)


async def test_duplicates_are_counted_when_the_sandbox_accepts_them() -> None:
    config = SandboxConfig(schedule=SCHEDULE, reject_duplicate_numbers=False)
    async with sandbox(config) as box:
        first = await box.connector.post_acte(acte(), files(), idempotency_key="a")
        second = await box.connector.post_acte(acte(), files(), idempotency_key="b")
        assert first.transaction_id != second.transaction_id
        stats = await box.stats()
        assert (stats["duplicate_posts"], stats["transactions_created"]) == (1, 2)


async def test_a_key_reused_for_another_acte_is_a_conflict() -> None:
    async with sandbox() as box:
        await box.connector.post_acte(acte(), files(), idempotency_key="flow-7:post")
        with pytest.raises(PartnerPermanentError) as caught:
            await box.connector.post_acte(
                acte(number="D2024_002"), files(), idempotency_key="flow-7:post"
            )
        assert caught.value.status == 409


# -- cancellation ----------------------------------------------------------------------------------


async def test_cancellation_takes_the_acte_to_state_zero() -> None:
    async with sandbox() as box:
        posted = await box.connector.post_acte(acte(), files())
        with pytest.raises(PartnerPermanentError) as early:
            await box.connector.cancel(posted.transaction_id)
        assert [r.field for r in early.value.reasons] == ["id"]

        box.clock.advance(SCHEDULE.acknowledge_after)
        cancelled = await box.connector.cancel(posted.transaction_id, idempotency_key="c1")
        again = await box.connector.cancel(posted.transaction_id, idempotency_key="c1")
        assert again.transaction_id == cancelled.transaction_id
        assert (await box.connector.get_status(posted.transaction_id)).status == 4

        box.clock.advance(SCHEDULE.cancel_acknowledge_after)
        status = await box.connector.get_status(posted.transaction_id)
        assert status.status == 0 and status.is_final
        ar = status.parsed_document()
        assert ar is not None and ar.type_code == "6-2"
        assert ar.id_acte == "006-210600235-20240228-D2024_001-DE"
        assert (await box.connector.get_status(cancelled.transaction_id)).status == 4
        with pytest.raises(PartnerPermanentError):
            await box.connector.cancel(posted.transaction_id)
        archive = await box.client.get(f"{BASE}/sandbox/transmissions/{cancelled.transaction_id}")
        kinds = {
            parse_message(xml).type_code for xml in read_transmission(archive.content).values()
        }
        assert kinds == {"enveloppe-cl", "6-1"}
        assert (await box.stats())["cancellations"] == 1


# -- classification --------------------------------------------------------------------------------


async def test_classification_fetch_is_schema_valid_and_complete() -> None:
    async with sandbox() as box:
        xml = await box.connector.fetch_classification()
        assert validate_actes_xml(xml) == []
        classification = parse_retour_classification(xml)
        assert [m.code for m in classification.matieres] == list(range(1, 10))
        assert all(m.children for m in classification.matieres)
        assert [n.code for n in classification.natures] == [1, 2, 3, 4, 5, 6]
        assert {t.code for n in classification.natures for t in n.typologies} == {
            "99_DE",
            "99_AR",
            "99_AI",
            "99_CO",
            "99_BF",
            "99_AU",
        }
        acknowledgement = await box.connector.request_classification()
        assert acknowledgement == "classification request sent to the prefecture"
        stats = await box.stats()
        assert (stats["classification_fetches"], stats["classification_requests"]) == (1, 1)


# -- prefecture documents and replies -------------------------------------------------------------


async def test_prefecture_documents_are_listed_fetched_marked_read_and_answered() -> None:
    config = SandboxConfig(schedule=SCHEDULE, prefecture_message_types=("3-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        posted = await box.connector.post_acte(acte(), files())
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert await box.connector.list_prefecture_documents() == []
        box.clock.advance(SCHEDULE.prefecture_message_after)

        (ref,) = await box.connector.list_prefecture_documents()
        assert ref.type_code == "3-1"
        assert ref.related_transaction_id == posted.transaction_id
        assert ref.date == date(2024, 3, 1)
        archive = read_transmission(await box.connector.get_prefecture_document(ref.id))
        parsed = {name: parse_message(xml) for name, xml in archive.items() if name.endswith("xml")}
        kinds = sorted(m.type_code for m in parsed.values())
        assert kinds == ["3-1", "enveloppe-misill"]
        request = next(m for m in parsed.values() if m.type_code == "3-1")
        document_name = request.fields["document"]
        assert isinstance(document_name, str)
        assert archive[document_name].startswith(b"%PDF-")

        reply = await box.connector.post_reply(
            ref.id, "3-4", None, [UploadFile("reponse.pdf", PDF), UploadFile("piece.pdf", ANNEX)]
        )
        with pytest.raises(PartnerPermanentError) as duplicate:
            await box.connector.post_reply(ref.id, "3-4", None, [UploadFile("r.pdf", PDF)])
        assert [r.field for r in duplicate.value.reasons] == ["type_envoie"]
        with pytest.raises(PartnerPermanentError) as typology:
            await box.connector.post_reply(
                ref.id, "3-3", ReplyForm(type_acte="99_AR"), [UploadFile("r.pdf", PDF)]
            )
        assert [r.field for r in typology.value.reasons] == ["type_acte"]
        await box.connector.mark_prefecture_document_read(ref.id)
        await box.connector.mark_prefecture_document_read(ref.id)
        assert await box.connector.list_prefecture_documents() == []

        box.clock.advance(SCHEDULE.reply_acknowledge_after)
        acknowledged = await box.connector.get_status(reply.transaction_id)
        assert acknowledged.status == 4
        ack = acknowledged.parsed_document()
        assert ack is not None and ack.type_code == "3-5"
        stats = await box.stats()
        assert stats["prefecture_documents"] == 1
        assert stats["documents_marked_read"] == 1
        assert stats["replies"] == 1


async def test_duplicate_fault_lists_a_document_twice_and_repeats_a_status() -> None:
    config = SandboxConfig(schedule=SCHEDULE, prefecture_message_types=("2-1",))
    async with sandbox(config, prefecture_message_rate=1.0, duplicate_rate=1.0) as box:
        posted = await box.connector.post_acte(acte(), files())
        box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
        refs = await box.connector.list_prefecture_documents()
        assert len(refs) == 2 and refs[0].id != refs[1].id
        assert {r.related_transaction_id for r in refs} == {posted.transaction_id}
        first = await box.connector.get_prefecture_document(refs[0].id)
        assert first == await box.connector.get_prefecture_document(refs[1].id)
        # The stale answer: the state before the latest one.
        assert (await box.connector.get_status(posted.transaction_id)).status == 3
        faults = (await box.stats())["faults"]
        assert faults["duplicate_document"] == 1
        assert faults["stale_status"] == 1


async def test_out_of_order_fault_shows_a_document_before_the_aracte() -> None:
    config = SandboxConfig(schedule=SCHEDULE, prefecture_message_types=("4-1",))
    async with sandbox(config, prefecture_message_rate=1.0, out_of_order=1.0) as box:
        posted = await box.connector.post_acte(acte(), files())
        box.clock.advance(SCHEDULE.transmit_after)
        (ref,) = await box.connector.list_prefecture_documents()
        assert ref.type_code == "4-1"
        assert (await box.connector.get_status(posted.transaction_id)).status == 3


async def test_outcomes_are_reproducible_for_a_seed() -> None:
    async def run() -> list[tuple[int, int]]:
        async with sandbox(anomaly_rate=0.5) as box:
            for n in range(8):
                await box.connector.post_acte(acte(number=f"D{n}"), files())
            box.clock.advance(SCHEDULE.acknowledge_after)
            outcomes = []
            for n in range(1, 9):
                outcomes.append((n, (await box.connector.get_status(str(n))).status))
            return outcomes

    first, second = await run(), await run()
    assert first == second
    assert {status for _, status in first} == {4, -1}


# -- faults ---------------------------------------------------------------------------------


async def test_injected_errors_are_transient_and_record_nothing() -> None:
    async with sandbox() as box:
        await box.set_faults(error_rate=1.0, retry_after=3)
        with pytest.raises(PartnerTransientError) as caught:
            await box.connector.post_acte(acte(), files(), idempotency_key="k")
        assert caught.value.status == 503
        assert caught.value.retry_after == 3.0
        await box.set_faults(error_rate=0.0)
        stats = await box.stats()
        assert stats["transactions_created"] == 0
        assert stats["faults"]["error"] == 1
        posted = await box.connector.post_acte(acte(), files(), idempotency_key="k")
        assert posted.transaction_id == "1"


async def test_an_error_after_commit_is_reconciled_by_key_and_listing() -> None:
    async with sandbox(error_after_commit_rate=1.0) as box:
        with pytest.raises(PartnerTransientError):
            await box.connector.post_acte(acte(), files(), idempotency_key="flow-3:post")
        assert (await box.stats())["transactions_created"] == 1
        found = await box.connector.find_by_idempotency_key(
            "flow-3:post", number="D2024_001", decision_date=date(2024, 2, 28), nature_code=1
        )
        assert found == "1"
        await box.set_faults(error_after_commit_rate=0.0)
        again = await box.connector.post_acte(acte(), files(), idempotency_key="flow-3:post")
        assert again.transaction_id == "1"
        assert (await box.stats())["transactions_created"] == 1


async def test_latency_is_applied_through_the_injected_sleep() -> None:
    async with sandbox(latency_ms=200, jitter_ms=100) as box:
        await box.connector.request_classification()
        assert len(box.sleeps) == 1
        assert 0.2 <= box.sleeps[0] <= 0.3


async def test_fault_knobs_are_validated() -> None:
    async with sandbox() as box:
        bad = await box.client.post(f"{BASE}/sandbox/faults", json={"error_rate": 2})
        assert bad.status_code == 400
        unknown = await box.client.post(f"{BASE}/sandbox/faults", json={"chaos": 1})
        assert unknown.status_code == 400
        shown = (await box.client.get(f"{BASE}/sandbox/faults")).json()
        assert shown == dataclasses.asdict(Faults())


async def test_reset_forgets_everything() -> None:
    async with sandbox() as box:
        await box.connector.post_acte(acte(), files())
        assert (await box.client.post(f"{BASE}/sandbox/reset")).status_code == 200
        stats = await box.stats()
        assert (stats["posts_received"], stats["transactions_created"]) == (0, 0)
        with pytest.raises(PartnerPermanentError):
            await box.connector.get_status("1")


async def test_a_hanging_tdt_times_out_and_the_acte_is_found_afterwards() -> None:
    config = SandboxConfig(schedule=SCHEDULE, faults=Faults(timeout_rate=1.0, hang_seconds=1.0))
    async with running_tdt_sandbox(config) as running:
        client = build_tdt_client(
            running.url, basic_user="demo", basic_password="demo", timeout=0.2
        )
        async with client:
            connector = S2lowConnector(client, base_url=running.url)
            with pytest.raises(PartnerTimeoutError) as caught:
                await connector.post_acte(acte(), files(), idempotency_key="flow-5:post")
            assert caught.value.retriable
            assert running.state.counters["transactions_created"] == 1
            running.state.faults = Faults()
            found = await connector.find_by_idempotency_key(
                "flow-5:post", number="D2024_001", decision_date=date(2024, 2, 28), nature_code=1
            )
            assert found == "1"


async def test_out_of_order_fault_shuffles_the_document_listing() -> None:
    config = SandboxConfig(schedule=SCHEDULE, prefecture_message_types=("2-1", "5-1"))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        for n in range(6):
            await box.connector.post_acte(acte(number=f"D{n}"), files())
        box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
        in_order = [r.id for r in await box.connector.list_prefecture_documents()]
        assert in_order == sorted(in_order, key=int) and len(in_order) == 6
        await box.set_faults(out_of_order=1.0)
        shuffled = [r.id for r in await box.connector.list_prefecture_documents()]
        assert sorted(shuffled, key=int) == in_order
        assert shuffled != in_order
        assert (await box.stats())["faults"]["shuffled_listing"] == 1


def test_a_configuration_can_come_from_plain_data() -> None:
    config = SandboxConfig.from_mapping(
        {
            "accounts": [
                {"login": "sivom", "password": "pw", "siren": "214400152", "department": "044"}
            ],
            "faults": {"error_rate": 0.1, "retry_after": 2},
            "schedule": {"acknowledge_after": 30},
            "classification_date": "2023-09-01",
            "seed": 42,
        }
    )
    assert config.account("sivom") is not None and config.account("demo") is None
    assert (config.faults.error_rate, config.faults.retry_after) == (0.1, 2.0)
    assert config.schedule.acknowledge_after == 30.0
    assert config.classification.date_version == date(2023, 9, 1)
    with pytest.raises(ConfigurationError):
        SandboxConfig.from_mapping({"chaos_monkey": True})
    with pytest.raises(ConfigurationError):
        create_tdt_sandbox(
            dataclasses.replace(config, schedule=Schedule(transmit_after=9, acknowledge_after=1))
        )
