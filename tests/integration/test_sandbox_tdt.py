"""The sandbox TdT answers as the real S²LOW does: exact bytes, status codes and headers.

Driven with raw HTTP (``httpx.ASGITransport`` and a fake clock, or the real server for
timeouts), never through our connector: the shapes asserted here are those of S²LOW's PHP
pages (libriciel/s2low ``public.ssl/modules/actes/``), see ``docs/sandbox-tdt.md``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from relais.actes.classification import parse_retour_classification
from relais.actes.xml_parse import parse_message
from relais.actes.xsd import validate_actes_xml
from relais.documents import sample_pdf
from relais.errors import ConfigurationError
from sandbox.tdt import Faults, SandboxAccount, SandboxConfig, Schedule, create_tdt_sandbox
from sandbox.tdt.server import running_tdt_sandbox
from sandbox.tdt.state import TdtState

BASE = "http://tdt.sandbox"
ACTES = f"{BASE}/modules/actes"
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
PHP_HTML = "text/html; charset=UTF-8"
ACCOUNTS = (
    SandboxAccount(login="demo", password="demo", siren="210600235", department="006"),
    SandboxAccount(login="other", password="pw", siren="214400152", department="044"),
    SandboxAccount(login="cs", password="pw", siren="200000172", department="021", permission="CS"),
    SandboxAccount(
        login="signer", password="pw", siren="200000180", department="021", must_sign=True
    ),
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Box:
    app: Any
    clock: FakeClock
    client: httpx.AsyncClient
    sleeps: list[float] = field(default_factory=list)

    @property
    def state(self) -> TdtState:
        state: TdtState = self.app.state.tdt
        return state

    def as_(self, login: str, password: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), auth=(login, password)
        )

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get(f"{BASE}/sandbox/stats")
        assert response.status_code == 200
        stats: dict[str, Any] = response.json()
        return stats

    async def set_faults(self, **knobs: Any) -> None:
        response = await self.client.post(f"{BASE}/sandbox/faults", json=knobs)
        assert response.status_code == 200, response.text

    async def post(self, number: str = "D2024_001", **changes: Any) -> httpx.Response:
        return await post_acte(self.client, number, **changes)

    async def posted(self, number: str = "D2024_001", **changes: Any) -> str:
        response = await self.post(number, **changes)
        assert response.content.startswith(b"OK\n"), response.content
        return response.content.split(b"\n")[1].decode()

    async def status(self, transaction_id: str) -> bytes:
        response = await self.client.get(
            f"{ACTES}/actes_transac_get_status.php", params={"transaction": transaction_id}
        )
        assert response.status_code == 200
        return response.content

    async def state_of(self, transaction_id: str) -> int:
        return int((await self.status(transaction_id)).split(b"\n")[1])


@asynccontextmanager
async def sandbox(config: SandboxConfig | None = None, **faults: Any) -> AsyncIterator[Box]:
    config = config or SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS)
    if faults:
        config = dataclasses.replace(config, faults=config.faults.updated(faults))
    clock = FakeClock()
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    app = create_tdt_sandbox(config, clock=clock, sleep=fake_sleep)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), auth=("demo", "demo"))
    async with client:
        yield Box(app, clock, client, sleeps)


def acte_form(number: str, **changes: Any) -> dict[str, Any]:
    """The fields Pastell posts (``S2low::sendActes``), subject in ISO-8859-1."""
    fields: dict[str, Any] = {
        "api": "1",
        "nature_code": "1",
        "number": number,
        "subject": "Délibération approuvant le budget primitif".encode("iso-8859-1"),
        "decision_date": "2024-02-28",
        "en_attente": "0",
        "document_papier": "0",
        "type_acte": "99_DE",
        "type_pj[]": ["99_AU"],
        "classif1": "7",
        "classif2": "1",
        "classif3": "1",
    }
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


async def post_acte(
    client: httpx.AsyncClient,
    number: str,
    *,
    main: tuple[str, bytes] | None = ("deliberation.pdf", PDF),
    annexes: tuple[tuple[str, bytes], ...] = (("annexe.pdf", ANNEX),),
    query: dict[str, str] | None = None,
    **changes: Any,
) -> httpx.Response:
    files = []
    if main is not None:
        files.append(("acte_pdf_file", (main[0], main[1], "application/pdf")))
    files += [("acte_attachments[]", (name, data, "application/pdf")) for name, data in annexes]
    return await client.post(
        f"{ACTES}/actes_transac_create.php",
        params=query,
        data=acte_form(number, **changes),
        files=files,
    )


def ko(text: str) -> bytes:
    """``returnAndExit`` with ``api=1``: htmlspecialchars(ENT_QUOTES), ISO-8859-1, newline."""
    escaped = text.replace("&", "&amp;").replace("'", "&#039;").replace('"', "&quot;")
    return b"KO\n" + escaped.replace("<", "&lt;").replace(">", "&gt;").encode("latin-1") + b"\n"


# -- actes_transac_create.php ------------------------------------------------------------------


async def test_a_created_acte_answers_ok_and_its_id_with_http_200() -> None:
    async with sandbox() as box:
        response = await box.post()
        assert (response.status_code, response.content) == (200, b"OK\n1\n\n")
        assert response.headers["content-type"] == PHP_HTML
        second = await box.post("D2024_002")
        assert second.content == b"OK\n2\n\n"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"number": "d2024_001"}, "Le numéro n'est pas correct"),
        ({"number": "_D2024"}, "Le numéro n'est pas correct"),
        ({"number": "D2024_"}, "Le numéro n'est pas correct"),
        ({"number": "A" * 16}, "Le numéro n'est pas correct"),
        ({"decision_date": "2024-03-02"}, "La date de décision est une date dans le futur"),
        ({"main": None}, "Aucun fichier acte n'a été posté "),
        (
            {"main": ("vide.pdf", b"")},
            "Erreur lors de la récéption du fichier : Le fichier semble vide",
        ),
        (
            {"type_acte": ""},
            "Erreur lors de la réception du fichier deliberation.pdf : typologie absente",
        ),
        (
            {"main": ("deliberation.pdf", b"not a pdf")},
            "Erreur de validation du fichier de l'acte :\n"
            'Le fichier de l\'acte " deliberation.pdf " est de type " text/plain ". '
            "Fichier PDF ou XML requis.\n",
        ),
        (
            {"type_acte": "99_DELIB"},
            "Erreur de validation du fichier de l'acte :\n"
            "Le code de la PJ doit faire 5 caractères\n",
        ),
        (
            {"type_pj[]": []},
            "Erreur lors de la réception du fichier annexe annexe.pdf : typologie absente",
        ),
        (
            {"type_pj[]": ["AU"]},
            "Erreur de validation d'un fichier de pièce jointe :\n"
            "Le code de la PJ doit faire 5 caractères\n",
        ),
        (
            {"classif2": None},
            "Erreur lors de l'enregistrement de la transaction :\n"
            "Les deux premiers niveaux de classification sont obligatoires.",
        ),
        (
            {"subject": b"x" * 500},
            "Erreur lors de l'enregistrement de la transaction :\n"
            "Le champ Objet de l'acte est trop long (499 caractères maxi autorisés).\n",
        ),
        (
            {"nature_code": "9"},
            "Erreur lors de l'enregistrement de la transaction :\n"
            "Description nature de l'acte doit être présent.\n",
        ),
    ],
)
async def test_refusals_are_ko_lines_in_s2low_words(changes: dict[str, Any], message: str) -> None:
    async with sandbox() as box:
        number = changes.pop("number", "D2024_001")
        response = await box.post(number, **changes)
        assert response.status_code == 200
        assert response.content == ko(message)
        assert box.state.transactions == {}
        assert (await box.stats())["rejected_posts"] == 1


async def test_the_checks_come_in_s2low_order() -> None:
    async with sandbox() as box:
        # A bad number is reported before a future date, a missing PDF or a bad typology.
        response = await box.post("bad-number", decision_date="2030-01-01", main=None)
        assert response.content == ko("Le numéro n'est pas correct")
        response = await box.post("D1", decision_date="2030-01-01", main=None)
        assert response.content == ko("La date de décision est une date dans le futur")


async def test_a_number_is_unique_per_authority_whatever_the_status() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, faults=Faults(anomaly_rate=1.0))
    async with sandbox(config) as box:
        first = await box.posted("D2024_001")
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert await box.state_of(first) == -1
        again = await box.post("D2024_001", decision_date="2024-01-05", nature_code="3")
        assert again.content == ko(
            "Un acte portant le même numéro interne existe déjà dans la base de données.\n"
            "Il faut peut-être ajouter un suffixe au numéro."
        )
        stats = await box.stats()
        assert (stats["duplicate_posts"], stats["rejected_posts"]) == (1, 1)
        async with box.as_("other", "pw") as other:
            assert (await post_acte(other, "D2024_001")).content == b"OK\n2\n\n"


async def test_fields_are_read_as_iso_8859_1() -> None:
    async with sandbox() as box:
        latin = await box.posted("D1", subject="Régie « école » été".encode("iso-8859-1"))
        utf8 = await box.posted("D2", subject="Régie".encode())
        listing = await box.client.get(f"{ACTES}/api/list_actes.php", params={"status_id": "1"})
        subjects = {row["id"]: row["subject"] for row in listing.json()["transactions"]}
        assert subjects[latin] == "Régie « école » été"
        assert subjects[utf8] == "RÃ©gie"  # UTF-8 arrives double-encoded, as in S²LOW


async def test_an_oversized_post_is_refused_before_authentication() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, max_total_bytes=1000)
    async with sandbox(config) as box:
        big = await box.post(main=("big.pdf", PDF + b"%" * 2000), query={"api": "1"})
        assert big.content == ko("La taille totale des fichiers est trop importante (max : 1000)")
        # Without api=1 in the query string PHP has no api (the POST body was dropped): 302.
        hidden = await box.post(main=("big.pdf", PDF + b"%" * 2000))
        assert hidden.status_code == 302
        assert hidden.headers["location"] == "/modules/actes/actes_transac_add.php"


async def test_authentication_failures_are_ko_lines_or_a_redirect() -> None:
    async with sandbox() as box, box.as_("demo", "wrong") as intruder:
        refused = await post_acte(intruder, "D1")
        assert refused.status_code == 200
        assert refused.content == ko("Le certificat n'est pas valide : aucun compte trouvé")
        listing = await intruder.get(f"{ACTES}/api/list_actes.php")
        assert (listing.status_code, listing.headers["location"]) == (302, "/connexion-status")
        assert box.state.transactions == {}


async def test_sandbox_only_paths_are_gone_from_s2low_paths() -> None:
    async with sandbox() as box:
        listing = await box.client.get(f"{ACTES}/api/list_transactions.php")
        assert listing.status_code == 404
        headers = {"X-Relais-Idempotency-Key": "flow-1:post"}
        first = await post_acte(box.client, "D1")
        box.client.headers.update(headers)
        again = await post_acte(box.client, "D1")
        assert first.content == b"OK\n1\n\n"
        assert again.content.startswith(b"KO\nUn acte portant le m\xeame num\xe9ro")


# -- actes_transac_get_status.php ----------------------------------------------------------------


async def test_status_goes_1_2_3_4_with_the_aracte_after_the_state_line() -> None:
    async with sandbox() as box:
        tid = await box.posted()
        assert await box.status(tid) == b"OK\n1\n"
        box.clock.advance(SCHEDULE.accept_after)
        assert await box.status(tid) == b"OK\n2\n"
        box.clock.advance(SCHEDULE.transmit_after - SCHEDULE.accept_after)
        assert await box.status(tid) == b"OK\n3\n"
        box.clock.advance(SCHEDULE.acknowledge_after)
        body = await box.status(tid)
        assert body.startswith(b"OK\n4\n<?xml")
        ar = body.split(b"\n", 2)[2]
        assert validate_actes_xml(ar) == []
        parsed = parse_message(ar)
        assert parsed.type_code == "1-2"
        assert parsed.id_acte == "006-210600235-20240228-D2024_001-DE"


async def test_an_anomaly_is_state_minus_one_with_the_file_then_the_message() -> None:
    async with sandbox(anomaly_rate=1.0) as box:
        tid = await box.posted()
        box.clock.advance(SCHEDULE.acknowledge_after)
        body = await box.status(tid)
        assert body.startswith(b"OK\n-1\n<?xml")
        assert (
            parse_message(body.split(b"\n", 2)[2].split(b"AnomalieActe 002")[0]).type_code == "1-3"
        )
        assert body.endswith(
            "date de classification qui n'est pas à jour".encode("latin-1")
            + " (anomalie simulée par le bac à sable)".encode("latin-1")
        )


async def test_matieres_outside_the_classification_come_back_as_an_anomaly() -> None:
    async with sandbox() as box:
        tid = await box.posted(classif1="9", classif2="9", classif3=None)
        assert await box.status(tid) == b"OK\n1\n"  # S²LOW accepts it; the préfecture does not
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert (await box.status(tid)).startswith(b"OK\n-1\n")


async def test_status_refusals_are_bare_utf8_lines() -> None:
    async with sandbox() as box:
        tid = await box.posted()
        assert await box.status("999") == "KO\nNuméro de transaction invalide.".encode()
        assert await box.status("abc") == "KO\nNuméro de transaction invalide.".encode()
        async with box.as_("other", "pw") as other:
            response = await other.get(
                f"{ACTES}/actes_transac_get_status.php", params={"transaction": tid}
            )
        assert response.content == "KO\nAccès refusé".encode()


async def test_waiting_states_17_and_18_until_released() -> None:
    async with sandbox() as box:
        waiting = await box.posted("D1", en_attente="1")
        signing = await box.posted("D2", must_signed="1")
        async with box.as_("cs", "pw") as cs:
            cs_id = (await post_acte(cs, "D3")).content.split(b"\n")[1].decode()
        async with box.as_("signer", "pw") as signer:
            signer_id = (await post_acte(signer, "D4")).content.split(b"\n")[1].decode()
        box.clock.advance(3600)
        assert await box.status(waiting) == b"OK\n17\n"
        assert await box.status(signing) == b"OK\n18\n"
        assert box.state.transactions[int(cs_id)].status == 17
        assert box.state.transactions[int(signer_id)].status == 18
        released = await box.client.post(f"{BASE}/sandbox/transactions/{signing}/release")
        assert released.status_code == 200 and released.json()["status"] == 1
        again = await box.client.post(f"{BASE}/sandbox/transactions/{signing}/release")
        assert again.status_code == 409
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert await box.state_of(signing) == 4
        assert await box.state_of(waiting) == 17


# -- actes_transac_cancel.php --------------------------------------------------------------------


async def test_cancellation_only_from_4_answers_the_new_transaction() -> None:
    async with sandbox() as box:
        tid = await box.posted()
        cancel = {"api": "1", "id": tid}
        early = await box.client.post(f"{ACTES}/actes_transac_cancel.php", data=cancel)
        assert early.content == ko(
            "Impossible d'annuler une transaction qui n'est pas en état « Acquittement reçu »."
        )
        box.clock.advance(SCHEDULE.acknowledge_after)
        response = await box.client.post(f"{ACTES}/actes_transac_cancel.php", data=cancel)
        assert (response.status_code, response.content) == (200, b"OK\n2\n\n")
        pending = await box.client.post(f"{ACTES}/actes_transac_cancel.php", data=cancel)
        assert pending.content == ko(
            "Une demande d'annulation est déjà en cours pour cette transaction."
        )
        assert await box.status("2") == b"OK\n1\n"
        box.clock.advance(SCHEDULE.transmit_after)
        assert await box.status("2") == b"OK\n3\n"
        box.clock.advance(SCHEDULE.cancel_acknowledge_after - SCHEDULE.transmit_after)
        assert (await box.status("2")).startswith(b"OK\n4\n<?xml")
        acte = await box.status(tid)
        assert acte.startswith(b"OK\n0\n<?xml")
        assert parse_message(acte.split(b"\n", 2)[2]).type_code == "6-2"
        of_cancellation = await box.client.post(
            f"{ACTES}/actes_transac_cancel.php", data={"api": "1", "id": "2"}
        )
        assert of_cancellation.content == ko("Ce type de transaction ne peut pas être annulé.")
        unknown = await box.client.post(
            f"{ACTES}/actes_transac_cancel.php", data={"api": "1", "id": "77"}
        )
        assert unknown.content == ko("Erreur d'initialisation de la transaction.")


# -- api/list_actes.php --------------------------------------------------------------------------


async def test_list_actes_is_listactesaction_with_string_values() -> None:
    async with sandbox() as box:
        for n in range(5):
            await box.posted(f"D{n}")
        listing = await box.client.get(f"{ACTES}/api/list_actes.php", params={"status_id": "1"})
        assert listing.status_code == 200 and listing.headers["content-type"] == PHP_HTML
        body = listing.json()
        assert {k: body[k] for k in ("status_id", "authority_id", "offset", "limit")} == {
            "status_id": "1",
            "authority_id": "1",
            "offset": "0",
            "limit": "100",
        }
        assert [row["id"] for row in body["transactions"]] == ["5", "4", "3", "2", "1"]
        assert body["transactions"][0] == {
            "id": "5",
            "subject": "Délibération approuvant le budget primitif",
            "number": "D4",
            "date": "2024-02-28",
            "nature_descr": "Délibérations",
            "classification": "7.1.1",
            "type": "1",
        }
        assert b"D\\u00e9lib\\u00e9rations" in listing.content  # PHP's json_encode escapes
        page = await box.client.get(
            f"{ACTES}/api/list_actes.php", params={"status_id": "1", "offset": "1", "limit": "2"}
        )
        assert [row["number"] for row in page.json()["transactions"]] == ["D3", "D2"]
        default = await box.client.get(f"{ACTES}/api/list_actes.php")
        assert default.json()["status_id"] == "0" and default.json()["transactions"] == []
        zero = await box.client.get(f"{ACTES}/api/list_actes.php", params={"limit": "0"})
        assert zero.json()["limit"] == "100"


async def test_list_actes_lists_every_type_in_the_state() -> None:
    async with sandbox() as box:
        tid = await box.posted()
        box.clock.advance(SCHEDULE.acknowledge_after)
        await box.client.post(f"{ACTES}/actes_transac_cancel.php", data={"api": "1", "id": tid})
        box.clock.advance(SCHEDULE.cancel_acknowledge_after)
        cancelled = await box.client.get(f"{ACTES}/api/list_actes.php", params={"status_id": "0"})
        assert [r["id"] for r in cancelled.json()["transactions"]] == [tid]
        four = await box.client.get(f"{ACTES}/api/list_actes.php", params={"status_id": "4"})
        (row,) = four.json()["transactions"]
        assert row["type"] == "6" and row["subject"] == "" and row["date"] == ""


# -- prefecture documents ------------------------------------------------------------------------


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


async def test_prefecture_documents_listed_redirected_downloaded_and_marked_read() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("2-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        tid = await box.posted()
        box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
        listing = await box.client.get(f"{ACTES}/api/list_document_prefecture.php")
        assert listing.status_code == 200
        assert listing.content == (
            b'[{"id":2,"type":"2","related_transaction_id":1,"number":"D2024_001",'
            b'"unique_id":"006-210600235-20240228-D2024_001-DE","last_status_id":21}]'
        )
        lines = await box.client.get(f"{ACTES}/actes_transac_get_document.php", params={"id": tid})
        assert lines.content == b"2-21-2\n"
        redirect = await box.client.get(
            f"{ACTES}/actes_transac_get_document.php", params={"id": "2"}
        )
        assert redirect.status_code == 302
        assert redirect.headers["location"].startswith("actes_download_file.php?env=")
        archive = await box.client.get(f"{ACTES}/{redirect.headers['location']}")
        assert archive.status_code == 200
        assert archive.headers["content-type"] == "application/x-gzip"
        assert archive.headers["content-disposition"].startswith('attachment; filename="')
        kinds = sorted(
            parse_message(xml).type_code
            for name, xml in _members(archive.content).items()
            if name.endswith(".xml")
        )
        assert kinds == ["2-1", "enveloppe-misill"]
        for transaction_id in ("2", "2", "999"):
            marked = await box.client.get(
                f"{ACTES}/api/document_prefecture_mark_as_read.php",
                params={"transaction_id": transaction_id},
            )
            assert marked.content == b'{"result":"ok"}'
        assert (await box.client.get(f"{ACTES}/api/list_document_prefecture.php")).content == b"[]"
        assert (await box.stats())["documents_marked_read"] == 1
        invalid = await box.client.get(f"{ACTES}/actes_transac_get_document.php")
        assert invalid.content == "KO\nNuméro de transaction invalide.".encode()


async def test_another_accounts_archive_is_not_served() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("4-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        await box.posted()
        box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
        async with box.as_("other", "pw") as other:
            listing = await other.get(f"{ACTES}/api/list_document_prefecture.php")
            assert listing.content == b"[]"
            download = await other.get(f"{ACTES}/actes_download_file.php", params={"env": "1"})
        assert (download.status_code, download.headers["location"]) == (
            302,
            "/modules/actes/index.php",
        )


# -- actes_transac_reponse_create.php ------------------------------------------------------------


async def _document(box: Box, kind: str) -> str:
    await box.posted()
    box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
    (row,) = (await box.client.get(f"{ACTES}/api/list_document_prefecture.php")).json()
    assert row["type"] == kind
    return str(row["id"])


async def _reply(
    box: Box, document: str, type_envoie: str, *, query_api: bool = False, pdf: bytes = PDF
) -> httpx.Response:
    data = {"id": document, "type_envoie": type_envoie, "type_acte": "99_AU"}
    if not query_api:
        data["api"] = "1"
    return await box.client.post(
        f"{ACTES}/actes_transac_reponse_create.php",
        params={"api": "1"} if query_api else None,
        data=data,
        files=[("acte_pdf_file", ("reponse.pdf", pdf, "application/pdf"))],
    )


async def test_a_reply_to_a_pieces_request_is_type_envoie_3_or_4() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("3-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        document = await _document(box, "3")
        wrong = await _reply(box, document, "2")
        assert wrong.content == ko(
            "Erreur lors de la génération de l'acte : Vous devez choisir un type de réponse"
        )
        sent = await _reply(box, document, "4")
        assert sent.content == b"OK\n3\n\n"  # api only in the POST, as Pastell sends it
        assert box.state.transactions[3].type_code == "3-4"
        listing = (await box.client.get(f"{ACTES}/api/list_document_prefecture.php")).json()
        assert [row["id"] for row in listing] == [2]  # replies (type_reponse set) are not listed
        box.clock.advance(SCHEDULE.reply_acknowledge_after)
        acknowledged = await box.status("3")
        assert parse_message(acknowledged.split(b"\n", 2)[2]).type_code == "3-5"


async def test_reply_answer_formats_depend_on_where_api_is() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("4-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        document = await _document(box, "4")
        refused = await _reply(box, document, "9", query_api=True)
        expected = "KO : Erreur lors de la génération de l'acte : "
        assert refused.content == (expected + "Vous devez choisir un type de réponse").encode()
        sent = await _reply(box, document, "3", query_api=True)
        assert sent.content == "OK : id généré : 3\n".encode()
        assert box.state.transactions[3].type_code == "4-3"


async def test_a_courrier_simple_accepts_any_type_envoie_and_a_defere_none() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("2-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        document = await _document(box, "2")
        assert (await _reply(box, document, "2")).content == b"OK\n3\n\n"
        assert box.state.transactions[3].type_code == "2-2"
    config = dataclasses.replace(config, prefecture_message_types=("5-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        document = await _document(box, "5")
        assert (await _reply(box, document, "4")).content == ko(
            "Erreur lors de la génération de l'acte : Mauvais type de transaction."
        )


# -- actes_transac_get_tampon.php ----------------------------------------------------------------


async def test_the_stamped_acte_once_acknowledged() -> None:
    async with sandbox() as box:
        tid = await box.posted()
        url = f"{ACTES}/actes_transac_get_tampon.php"
        early = await box.client.get(url, params={"transaction": tid})
        assert early.content == b"KO\nPas d'acquittement recu"
        not_int = await box.client.get(url, params={"transaction": "1x"})
        assert not_int.content == b"transaction n'est pas un entier"
        box.clock.advance(SCHEDULE.acknowledge_after)
        redirect = await box.client.get(url, params={"transaction": tid})
        assert redirect.status_code == 302
        assert redirect.headers["location"] == "actes_download_file.php?file=1&tampon=true"
        stamped = await box.client.get(f"{ACTES}/{redirect.headers['location']}")
        assert stamped.headers["content-type"] == "application/pdf"
        assert stamped.headers["content-disposition"].startswith("attachment; filename=99_DE-")
        assert stamped.content.startswith(PDF) and len(stamped.content) > len(PDF)
        assert b"006-210600235-20240228-D2024_001-DE" in stamped.content
        assert b"/Count 2" in stamped.content and stamped.content.endswith(b"%%EOF\n")
        plain = await box.client.get(f"{ACTES}/actes_download_file.php", params={"file": "1"})
        assert plain.content == PDF
        assert plain.headers["content-disposition"] == 'attachment; filename="deliberation.pdf"'


# -- classification ------------------------------------------------------------------------------


async def test_classification_fetch_is_the_stored_file_and_crlf() -> None:
    async with sandbox() as box:
        response = await box.client.get(
            f"{ACTES}/actes_classification_fetch.php", params={"api": "1"}
        )
        assert response.headers["content-type"] == "text/xml;charset=iso-8859-1"
        assert response.content.endswith(b"</actes:RetourClassification>\r\n")
        xml = response.content[:-2]
        assert validate_actes_xml(xml) == []
        assert parse_retour_classification(xml).date_version == date(2024, 1, 15)


async def test_a_classification_request_is_answered_unchanged_or_with_a_new_version() -> None:
    async with sandbox() as box:
        url = f"{ACTES}/actes_classification_request.php"
        first = await box.client.get(url, params={"api": "1"})
        assert first.content == b"OK\n1\n\n"
        again = await box.client.get(url, params={"api": "1"})
        assert again.content == ko("La dernière demande de classification date de moins d'un jour.")
        box.clock.advance(SCHEDULE.acknowledge_after)
        unchanged = await box.status("1")
        assert parse_message(unchanged.split(b"\n", 2)[2]).type_code == "7-3"
        published = await box.client.post(
            f"{BASE}/sandbox/classification", json={"date_version": "2024-06-01"}
        )
        assert published.json()["date_version"] == "2024-06-01"
        box.clock.advance(86400)
        assert (await box.client.get(url, params={"api": "1"})).content == b"OK\n2\n\n"
        box.clock.advance(SCHEDULE.acknowledge_after)
        answer = (await box.status("2")).split(b"\n", 2)[2]
        assert parse_message(answer).type_code == "7-2"
        fetched = await box.client.get(
            f"{ACTES}/actes_classification_fetch.php", params={"api": "1"}
        )
        assert fetched.content == answer + b"\r\n"


# -- sandbox-only: faults, counters, reset, clock -------------------------------------------------


async def test_injected_errors_record_nothing() -> None:
    async with sandbox(error_rate=1.0, error_status=503, retry_after=3) as box:
        response = await box.post()
        assert response.status_code == 503 and response.headers["retry-after"] == "3"
        assert box.state.transactions == {}
        assert (await box.stats())["faults"]["error"] == 1


async def test_an_error_after_commit_leaves_an_acte_list_actes_finds() -> None:
    async with sandbox(error_after_commit_rate=1.0) as box:
        response = await box.post()
        assert response.status_code == 503
        await box.set_faults(error_after_commit_rate=0.0)
        listing = await box.client.get(f"{ACTES}/api/list_actes.php", params={"status_id": "1"})
        (row,) = listing.json()["transactions"]
        assert (row["number"], row["date"], row["type"]) == ("D2024_001", "2024-02-28", "1")
        retry = await box.post()
        assert retry.content.startswith(b"KO\nUn acte portant le m\xeame")


async def test_latency_is_applied_through_the_injected_sleep() -> None:
    async with sandbox(latency_ms=250) as box:
        await box.status("1")
        assert box.sleeps == [0.25]


async def test_fault_knobs_are_validated() -> None:
    async with sandbox() as box:
        bad = await box.client.post(f"{BASE}/sandbox/faults", json={"error_rate": 2, "bogus": 1})
        assert bad.status_code == 400
        assert {r["field"] for r in bad.json()["reasons"]} == {"bogus"}
        bad = await box.client.post(f"{BASE}/sandbox/faults", json={"error_rate": 2})
        assert bad.status_code == 400


async def test_duplicate_fault_lists_a_document_twice_and_repeats_a_status() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("2-1",))
    async with sandbox(config, prefecture_message_rate=1.0, duplicate_rate=1.0) as box:
        tid = await box.posted()
        box.clock.advance(SCHEDULE.acknowledge_after + SCHEDULE.prefecture_message_after)
        rows = (await box.client.get(f"{ACTES}/api/list_document_prefecture.php")).json()
        assert len(rows) == 2 and rows[0]["id"] != rows[1]["id"]
        assert {r["related_transaction_id"] for r in rows} == {int(tid)}
        assert await box.state_of(tid) == 3  # the stale answer: the state before the latest
        faults = (await box.stats())["faults"]
        assert (faults["duplicate_document"], faults["stale_status"]) == (1, 1)


async def test_out_of_order_fault_shows_a_document_before_the_aracte() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("4-1",))
    async with sandbox(config, prefecture_message_rate=1.0, out_of_order=1.0) as box:
        tid = await box.posted()
        box.clock.advance(SCHEDULE.transmit_after)
        rows = (await box.client.get(f"{ACTES}/api/list_document_prefecture.php")).json()
        assert [r["type"] for r in rows] == ["4"]
        assert await box.state_of(tid) == 3


async def test_outcomes_are_reproducible_for_a_seed() -> None:
    async def run() -> list[int]:
        async with sandbox(anomaly_rate=0.5) as box:
            ids = [await box.posted(f"D{n}") for n in range(8)]
            box.clock.advance(SCHEDULE.acknowledge_after)
            return [await box.state_of(tid) for tid in ids]

    first, second = await run(), await run()
    assert first == second and set(first) == {-1, 4}


async def test_reset_forgets_everything() -> None:
    async with sandbox() as box:
        await box.posted()
        reset = await box.client.post(f"{BASE}/sandbox/reset")
        assert reset.json() == {"result": "ok"}
        assert box.state.transactions == {}
        assert (await box.post()).content == b"OK\n1\n\n"


async def test_the_clock_control_moves_the_default_clock() -> None:
    app = create_tdt_sandbox(SandboxConfig(schedule=SCHEDULE))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), auth=("demo", "demo")
    ) as client:
        tid = (await post_acte(client, "D1", decision_date="2024-01-02")).content.split(b"\n")[1]
        before = (await client.get(f"{BASE}/sandbox/clock")).json()["clock"]
        moved = await client.post(f"{BASE}/sandbox/clock", json={"advance_seconds": 3600})
        assert moved.json()["clock"] > before
        status = await client.get(
            f"{ACTES}/actes_transac_get_status.php", params={"transaction": tid.decode()}
        )
        assert status.content.startswith(b"OK\n4\n")
        bad = await client.post(f"{BASE}/sandbox/clock", json={"advance_seconds": -1})
        assert bad.status_code == 400


async def test_a_hanging_tdt_times_out_and_the_acte_is_listed_afterwards() -> None:
    config = SandboxConfig(schedule=SCHEDULE, faults=Faults(timeout_rate=1.0, hang_seconds=1.0))
    async with running_tdt_sandbox(config) as running:
        async with httpx.AsyncClient(auth=("demo", "demo"), timeout=0.2) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.post(
                    f"{running.url}/modules/actes/actes_transac_create.php",
                    data=acte_form("D1", **{"type_pj[]": None}),
                    files=[("acte_pdf_file", ("a.pdf", PDF, "application/pdf"))],
                )
            running.state.faults = Faults()
            listing = await client.get(
                f"{running.url}/modules/actes/api/list_actes.php", params={"status_id": "1"}
            )
        assert [row["number"] for row in json.loads(listing.content)["transactions"]] == ["D1"]


def test_a_configuration_can_come_from_plain_data() -> None:
    config = SandboxConfig.from_mapping(
        {
            "accounts": [
                {
                    "login": "sivom",
                    "password": "pw",
                    "siren": "214400152",
                    "department": "044",
                    "permission": "CS",
                }
            ],
            "faults": {"error_rate": 0.1, "retry_after": 2},
            "schedule": {"acknowledge_after": 30},
            "classification_date": "2023-09-01",
            "seed": 42,
        }
    )
    account = config.account("sivom")
    assert account is not None and account.permission == "CS" and config.account("demo") is None
    assert (config.faults.error_rate, config.faults.retry_after) == (0.1, 2.0)
    assert config.classification.date_version == date(2023, 9, 1)
    with pytest.raises(ConfigurationError):
        SandboxConfig.from_mapping({"reject_duplicate_numbers": False})
    with pytest.raises(ConfigurationError):
        create_tdt_sandbox(
            dataclasses.replace(config, schedule=Schedule(transmit_after=9, acknowledge_after=1))
        )
    bad = dataclasses.replace(config, accounts=(dataclasses.replace(account, permission="X"),))
    with pytest.raises(ConfigurationError):
        create_tdt_sandbox(bad)


async def test_document_lines_of_an_acte_follow_getcourrierinfo() -> None:
    config = SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, prefecture_message_types=("3-1",))
    async with sandbox(config, prefecture_message_rate=1.0) as box:
        document = await _document(box, "3")
        url = f"{ACTES}/actes_transac_get_document.php"
        assert (await box.client.get(url, params={"id": "1"})).content == b"3-7-2\n"
        assert (await _reply(box, document, "4")).content == b"OK\n3\n\n"
        cancel = {"api": "1", "id": "1"}
        assert (
            await box.client.post(f"{ACTES}/actes_transac_cancel.php", data=cancel)
        ).content == (b"OK\n4\n\n")
        # The replied message is replaced by its reply (with the message's type); the
        # cancellation is listed too.
        assert (await box.client.get(url, params={"id": "1"})).content == b"3-1-3\n6-1-4\n"


async def test_an_account_without_rw_cannot_poll_or_fetch_the_stamp() -> None:
    async with sandbox() as box, box.as_("cs", "pw") as cs:
        tid = (await post_acte(cs, "D1")).content.split(b"\n")[1].decode()
        status = await cs.get(f"{ACTES}/actes_transac_get_status.php", params={"transaction": tid})
        assert status.content == "KO\nAccès refusé".encode()
        cancel = await cs.post(f"{ACTES}/actes_transac_cancel.php", data={"api": "1", "id": tid})
        assert cancel.content == ko("Accès refusé")
        listing = await cs.get(f"{ACTES}/api/list_actes.php", params={"status_id": "17"})
        assert [row["id"] for row in listing.json()["transactions"]] == [tid]


async def test_list_actes_filters_on_the_day_the_state_was_entered() -> None:
    async with sandbox() as box:
        early = await box.posted("D1")
        box.clock.advance(86400)
        late = await box.posted("D2")
        box.clock.advance(SCHEDULE.acknowledge_after)
        url = f"{ACTES}/api/list_actes.php"
        both = await box.client.get(url, params={"status_id": "4", "min_date": "2024-03-01"})
        assert [row["id"] for row in both.json()["transactions"]] == [late, early]
        later = await box.client.get(url, params={"status_id": "4", "min_date": "2024-03-02"})
        assert [row["id"] for row in later.json()["transactions"]] == [late]
        before = await box.client.get(url, params={"status_id": "4", "max_date": "2024-03-02"})
        assert [row["id"] for row in before.json()["transactions"]] == [early]
        broken = await box.client.get(url, params={"status_id": "4", "min_date": "hier"})
        assert broken.status_code == 500


async def test_without_api_the_web_form_answers_redirect_and_reads_utf8() -> None:
    async with sandbox() as box:
        created = await box.post("D1", api=None, subject="Régie".encode())
        assert created.status_code == 302
        assert created.headers["location"] == "/modules/actes/actes_transac_show.php?id=1"
        refused = await box.post("d1", api=None)
        assert (refused.status_code, refused.headers["location"]) == (
            302,
            "/modules/actes/actes_transac_add.php",
        )
        assert box.state.transactions[1].subject == "Régie"


async def test_post_confirm_moves_17_to_1_and_redirects_to_url_return() -> None:
    async with sandbox() as box:
        waiting = await box.posted("D1", en_attente="1")
        signing = await box.posted("D2", must_signed="1")
        url = f"{ACTES}/actes_transac_post_confirm_api.php"
        back = "https://pastell.example/retour?error=%%ERROR%%&message=%%MESSAGE%%"
        refused = await box.client.get(url, params={"id": signing, "url_return": back})
        assert refused.status_code == 302
        assert refused.headers["location"] == (
            "https://pastell.example/retour?error=1&message="
            "La transaction n'est pas dans le statut « En attente d'être posté»"
        )
        posted = await box.client.get(url, params={"id": waiting, "url_return": back})
        assert posted.headers["location"] == "https://pastell.example/retour?error=0&message="
        assert await box.status(waiting) == b"OK\n1\n"
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert await box.state_of(waiting) == 4
        assert await box.status(signing) == b"OK\n18\n"
