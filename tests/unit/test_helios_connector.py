"""The Hélios calls of the TdT connector against ``httpx.MockTransport``, fed answers shaped
as S²LOW's Hélios scripts write them (see ``connectors/tdt/helios.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connectors.tdt.helios import DUPLICATE_CODE, HeliosConnector, HeliosStatus, repair_text
from relais.errors import (
    PartnerAuthError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerTransientError,
)

BASE = "https://tdt.example.org"
SAMPLES = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes" / "samples"
PES = (SAMPLES / "pastell_PES_ex.xml").read_bytes()
ACQUIT = (SAMPLES / "s2low_pes_acquit.xml").read_bytes()

Handler = Callable[[httpx.Request], httpx.Response]


def _connector(handler: Handler) -> HeliosConnector:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)

    async def no_sleep(_: float) -> None:
        return None

    return HeliosConnector(client, base_url=BASE, sleep=no_sleep)


def _double_utf8(text: str) -> bytes:
    """What ``utf8_encode`` does to a UTF-8 PHP string: every byte taken as Latin-1."""
    return text.encode("utf-8").decode("latin-1").encode("utf-8")


def import_answer(result: str, ident: str, message: str) -> bytes:
    """``HeliosController::importAPIAction``: DOMDocument saved with formatOutput."""
    return (b'<?xml version="1.0"?>\n<import>\n  <id>' + ident.encode() + b"</id>\n"
            b"  <resultat>" + result.encode() + b"</resultat>\n  <message>"
            + _double_utf8(message) + b"</message>\n</import>\n")


def status_answer(result: str, ident: str, message: str, status: str) -> bytes:
    """``HeliosAPIResponse::displayAndExit``: declared ISO-8859-1, texts UTF-8."""
    return (b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<transaction >\n        <id>'
            + ident.encode() + b"</id><resultat>" + result.encode() + b"</resultat><message>"
            + message.encode("utf-8") + b"</message><status>" + status.encode()
            + b"</status></transaction>\n            ")


async def test_import_posts_the_enveloppe_and_reads_the_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=import_answer(
            "OK", "4021", "Téléchargement du fichier réussi."),
            headers={"Content-Type": "text/xml",
                     "Content-Disposition": 'attachment; filename="import.xml"'})

    result = await _connector(handler).import_pes(PES, "PES ex (1).xml")
    assert (result.transaction_id, result.message) == ("4021", "Téléchargement du fichier réussi.")
    request = seen[0]
    assert (request.method, request.url.path) == (
        "POST", "/modules/helios/api/helios_importer_fichier.php")
    body = request.content
    assert b'name="enveloppe"; filename="PES ex _1_.xml"' in body
    assert PES in body
    assert b"must_signed" not in body


async def test_duplicate_import_is_a_typed_refusal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=import_answer(
            "KO", "", "doublon détecté. Ce fichier a déjà été posté."))

    with pytest.raises(PartnerRefusedError) as caught:
        await _connector(handler).import_pes(PES, "pes.xml")
    assert caught.value.message == "doublon détecté. Ce fichier a déjà été posté."
    assert caught.value.reasons[0].code == DUPLICATE_CODE


async def test_import_refused_account_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content="KO\nÉchec de l'authentification".encode())

    with pytest.raises(PartnerAuthError):
        await _connector(handler).import_pes(PES, "pes.xml")


async def test_status_reads_the_state_and_repairs_the_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/modules/helios/api/helios_transac_get_status.php"
        assert request.url.params["transaction"] == "4021"
        return httpx.Response(200, content=status_answer(
            "OK", "4021", "Fichier bien reçu par la plate-forme S2low", "8"),
            headers={"Content-Type": "text/xml"})

    result = await _connector(handler).get_pes_status("4021")
    assert result.status == HeliosStatus.INFORMATION_AVAILABLE
    assert result.acquit_available
    assert result.message == "Fichier bien reçu par la plate-forme S2low"


async def test_status_of_an_unknown_transaction_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=status_answer(
            "KO", "99", "Numéro de transaction invalide", ""))

    with pytest.raises(PartnerRefusedError, match="transaction invalide"):
        await _connector(handler).get_pes_status("99")


async def test_acquit_download_and_redirect_when_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/modules/helios/helios_download_acquit.php"
        if request.url.params["id"] == "4021":
            return httpx.Response(200, content=ACQUIT, headers={"Content-Type": "text/xml"})
        return httpx.Response(302, headers={"Location": f"{BASE}/modules/helios/index.php"})

    connector = _connector(handler)
    assert await connector.get_acquit("4021") == ACQUIT
    with pytest.raises(PartnerRefusedError, match="no file"):
        await connector.get_acquit("4022")


async def test_acquit_that_is_not_one_is_a_reply_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=PES)

    with pytest.raises(PartnerReplyError):
        await _connector(handler).get_acquit("1")


LISTE = (b'<?xml version="1.0"?>\n<liste>\n  <idColl>12</idColl>\n  <resultat/>\n'
         b"  <message>liste r\xc3\xa9ussi</message>\n  <dateDemande>2026-12-04 10:01:02"
         b"</dateDemande>\n  <pes_retour>\n    <id>77</id>\n    <nom>PES_DEPENSE_RETOUR.xml"
         b"</nom>\n    <date>2026-12-03 18:00:00</date>\n  </pes_retour>\n</liste>\n")


async def test_pes_retour_list_get_and_mark_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("helios_get_list.php"):
            return httpx.Response(200, content=LISTE)
        if path.endswith("helios_get_retour.php"):
            if request.url.params["id"] == "77":
                return httpx.Response(200, content=b"<?xml version=\"1.0\"?><n:PES_Retour/>")
            return httpx.Response(200, content=(
                b'<?xml version="1.0"?>\n<get_retour>\n  <id>78</id>\n  <resultat>KO'
                b"</resultat>\n  <message>retour id n'est pas correcte</message>\n"
                b"</get_retour>\n"))
        assert path.endswith("helios_change_status.php")
        return httpx.Response(200, content=(
            b'<?xml version="1.0"?>\n<transaction>\n  <idRetour>77</idRetour>\n'
            b"  <resultat>OK</resultat>\n  <message>reussi de changer status</message>\n"
            b"</transaction>\n"))

    connector = _connector(handler)
    rows = await connector.list_pes_retour()
    assert [(r.retour_id, r.name, r.date) for r in rows] == [
        ("77", "PES_DEPENSE_RETOUR.xml", "2026-12-03 18:00:00")]
    assert (await connector.get_pes_retour("77")).endswith(b"<n:PES_Retour/>")
    with pytest.raises(PartnerRefusedError, match="pas correcte"):
        await connector.get_pes_retour("78")
    await connector.mark_pes_retour_read("77")


async def test_find_pes_walks_ids_and_compares_content() -> None:
    other = PES.replace(b"SICOVAL201512104", b"SICOVAL201512105")
    held = {"11": other, "13": PES}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("helios_transac_get_status.php"):
            ident = request.url.params["transaction"]
            if ident == "12":
                return httpx.Response(200, content=status_answer("KO", ident, "Accès refusé", ""))
            if ident in held:
                return httpx.Response(200, content=status_answer("OK", ident, "Posté", "1"))
            return httpx.Response(200, content=status_answer(
                "KO", ident, "Numéro de transaction invalide", ""))
        assert path.endswith("helios_download_file.php")
        return httpx.Response(200, content=held[request.url.params["id"]])

    connector = _connector(handler)
    assert await connector.find_pes(PES, after_id=10) == "13"
    assert await connector.find_pes(b"<other/>", after_id=10) is None
    assert hashlib.sha1(PES, usedforsecurity=False).hexdigest() != hashlib.sha1(
        other, usedforsecurity=False).hexdigest()


async def test_find_pes_resumes_a_walk_cut_by_a_transient_error() -> None:
    """Each try walks further: ids already seen (another authority's, or ours with their
    content digest) are not asked again, so a long walk on a flaky TdT still completes."""
    held = {"30": PES}
    asked: list[str] = []
    broken = {"23", "27"}  # each fails once (with every retry of the read), then answers

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("helios_transac_get_status.php"):
            ident = request.url.params["transaction"]
            asked.append(ident)
            if ident in broken:
                if asked.count(ident) >= 3:
                    broken.discard(ident)
                return httpx.Response(503, content=b"busy")
            if ident in held:
                return httpx.Response(200, content=status_answer("OK", ident, "Posté", "1"))
            return httpx.Response(200, content=status_answer("KO", ident, "Accès refusé", ""))
        return httpx.Response(200, content=held[request.url.params["id"]])

    connector = _connector(handler)
    cut = 0
    for _ in range(3):
        try:
            found = await connector.find_pes(PES, after_id=20, window=20)
            break
        except PartnerTransientError:
            cut += 1
    assert (cut, found) == (2, "30")
    # ids 21, 22 asked once; 23 until it answered; never again afterwards
    assert asked.count("21") == asked.count("22") == 1
    assert asked.count("24") == asked.count("28") == asked.count("30") == 1
    assert await connector.find_pes(PES, after_id=20, window=20) == "30"
    assert asked.count("30") == 1  # known now


def test_repair_text() -> None:
    assert repair_text("doublon dÃ©tectÃ©") == "doublon détecté"
    assert repair_text("déjà") == "déjà"


async def test_registry_builds_one_helios_connector_per_tdt_account() -> None:
    from datetime import UTC, datetime

    from connectors.tdt.helios import HeliosConnectors
    from relais.members.model import Member, TdtSettings

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=import_answer("OK", "7", "ok"))

    account = TdtSettings(url=BASE, login="mairie", password_env="HELIOS_TEST_PASSWORD")
    member = Member(siren="243100633", name="Sicoval", department="031", token_sha256="x",
                    registered_at=datetime(2026, 1, 1, tzinfo=UTC), tdt=account)
    registry = HeliosConnectors(environ={"HELIOS_TEST_PASSWORD": "pw"},
                                transport=httpx.MockTransport(handler))
    try:
        connector = registry.for_member(member)
        assert registry.for_member(member) is connector
        assert (await connector.import_pes(PES, "pes.xml")).transaction_id == "7"
        assert seen == [f"{BASE}/modules/helios/api/helios_importer_fichier.php"]
    finally:
        await registry.aclose()
