"""The S²LOW connector against ``httpx.MockTransport``, fed the answers S²LOW really emits.

Every fixture here is shaped byte for byte after libriciel/s2low:
``ResponseHelper::returnAndExit`` (``OK\\n<id>\\n\\n``, ``KO\\n<htmlspecialchars
text>\\n`` in ISO-8859-1, HTTP 200), the literal UTF-8 ``echo "KO\\n…"`` lines of
``actes_transac_get_status.php``, the 302 of ``actes_transac_get_document.php``
and ``actes_transac_get_tampon.php``, and the JSON of ``ActesAPIController``
(every row value a string, ``json_encode`` escapes).
"""

from __future__ import annotations

import asyncio
import gzip
import html
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

import connectors.tdt
from connectors.tdt import (
    ActeForm,
    ReplyForm,
    S2lowConnector,
    UploadFile,
    build_tdt_client,
)
from connectors.tdt.errors import TRANSPORT_ERRORS, error_class_for, parse_retry_after
from connectors.tdt.models import TransactionStatus
from connectors.tdt.s2low import LISTING_STATES, REPLY_TYPE_ENVOIE, ReplyCaps
from relais.actes.archive import pack_archive
from relais.documents import sample_pdf
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerReplyTooLargeError,
    PartnerTimeoutError,
    PartnerTransientError,
    Reason,
    ValidationError,
)
from sandbox.tdt.prefecture_xml import build_demande_piece_complementaire, build_envelope_pref

BASE = "https://tdt.example.test"
PDF = b"%PDF-1.4\n%test\n"
FORM = ActeForm(
    nature_code=1,
    number="D2024_017",
    subject="Délibération relative à l’école",
    decision_date=date(2024, 2, 28),
    classification=(7, 1, 2),
    type_acte="99_DE",
    type_pj=("99_AU",),
)
FILES = [UploadFile("acte.pdf", PDF), UploadFile("annexe budget.pdf", PDF + b"annex")]

Handler = Callable[[httpx.Request], httpx.Response]


def s2low_ok(payload: str) -> bytes:
    """``returnAndExit(0, …, $apiMsg)``: ``OK``, then the API message and a newline, Latin-1."""
    return b"OK\n" + payload.encode("iso-8859-1") + b"\n"


def s2low_ko(message: str) -> bytes:
    """``returnAndExit(1, $msg)``: ``KO``, then ``htmlspecialchars($msg)`` in ISO-8859-1."""
    return (
        b"KO\n"
        + html.escape(message, quote=True).replace("&#x27;", "&#039;").encode("iso-8859-1")
        + b"\n"
    )


def php_json(value: Any) -> bytes:
    """``json_encode``: compact, non-ASCII as ``\\uXXXX``, ``/`` escaped."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode("ascii")


CREATE_OK = s2low_ok("4242\n")  # b"OK\n4242\n\n"
DUPLICATE = (
    "Un acte portant le même numéro interne existe déjà dans la base de données.\n"
    "Il faut peut-être ajouter un suffixe au numéro."
)


async def no_sleep(seconds: float) -> None:
    return None


def connector_for(handler: Handler, **kwargs: Any) -> S2lowConnector:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)
    kwargs.setdefault("sleep", no_sleep)
    return S2lowConnector(client, base_url=BASE, **kwargs)


def answering(body: bytes, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, content=body)


def recording(seen: list[httpx.Request], handler: Handler) -> Handler:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return record


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests never open sockets: the default transport would fail loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test tried to open a network connection")

    monkeypatch.setattr("httpcore.AsyncConnectionPool.handle_async_request", refuse)
    yield


def multipart_of(request: httpx.Request) -> tuple[dict[str, list[bytes]], dict[str, list[bytes]]]:
    """(fields, files) of a multipart request, values as raw bytes."""
    _, params = parse_options_header(request.headers["content-type"])
    fields: dict[str, list[bytes]] = {}
    files: dict[str, list[bytes]] = {}
    current: dict[str, bytearray] = {"name": bytearray(), "value": bytearray(), "data": bytearray()}
    headers: list[bytes] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current["value"] += data[start:end]

    def on_header_end() -> None:
        headers.append(bytes(current["name"]) + b": " + bytes(current["value"]))
        current["name"], current["value"] = bytearray(), bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"] += data[start:end]

    def on_part_end() -> None:
        disposition = next(h for h in headers if h.lower().startswith(b"content-disposition"))
        _, options = parse_options_header(disposition.split(b": ", 1)[1])
        target = files if b"filename" in options else fields
        target.setdefault(options[b"name"].decode(), []).append(bytes(current["data"]))
        headers.clear()
        current["data"] = bytearray()

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    parser.write(request.content)
    parser.finalize()
    return fields, files


# -- post_acte ---------------------------------------------------------------------------------


async def test_post_acte_sends_the_s2low_form_and_reads_ok_id() -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, answering(CREATE_OK)))
    result = await connector.post_acte(FORM, FILES)

    assert result.transaction_id == "4242"
    assert (result.partner, result.http_status, result.raw) == ("tdt", 200, CREATE_OK)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/modules/actes/actes_transac_create.php"
    assert not any(name.lower().startswith("x-relais") for name in request.headers)
    assert int(request.headers["content-length"]) == len(request.content)
    fields, files = multipart_of(request)
    assert fields["api"] == [b"1"]
    assert fields["nature_code"] == [b"1"]
    assert fields["number"] == [b"D2024_017"]
    # ISO-8859-1 bytes, as S²LOW reads fields when api=1 is in POST; ’ folded to '.
    assert fields["subject"] == ["Délibération relative à l'école".encode("iso-8859-1")]
    assert fields["decision_date"] == [b"2024-02-28"]
    assert (fields["classif1"], fields["classif2"], fields["classif3"]) == ([b"7"], [b"1"], [b"2"])
    assert "classif4" not in fields
    assert (fields["document_papier"], fields["en_attente"]) == ([b"0"], [b"0"])
    assert fields["type_acte"] == [b"99_DE"]
    assert fields["type_pj[]"] == [b"99_AU"]
    assert files["acte_pdf_file"] == [PDF]
    assert files["acte_attachments[]"] == [PDF + b"annex"]


async def test_post_acte_streams_async_files_with_a_declared_size() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, content=CREATE_OK)

    async def chunks() -> AsyncIterator[bytes]:
        for part in (PDF[:5], PDF[5:], b"tail"):
            yield part

    form = ActeForm(
        nature_code=3,
        number="A12",
        subject="Arrêté",
        decision_date=date(2024, 1, 2),
        classification=(4, 1),
    )
    connector = S2lowConnector(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)), base_url=BASE
    )
    await connector.post_acte(form, [UploadFile("a.pdf", chunks(), size=len(PDF) + 4)])
    (request,) = seen
    assert int(request.headers["content-length"]) == len(request.content)
    _, files = multipart_of(request)
    assert files["acte_pdf_file"] == [PDF + b"tail"]


@pytest.mark.parametrize(
    "number", ["d2024_017", "_D1", "D1_", "D-1", "", "ABCDEFGHIJKLMNOP", "D 1", "DÉL1"]
)
async def test_a_number_s2low_would_refuse_never_reaches_it(number: str) -> None:
    seen: list[httpx.Request] = []
    form = ActeForm(
        nature_code=1,
        number=number,
        subject="Objet",
        decision_date=date(2024, 1, 2),
        classification=(9, 1),
    )
    with pytest.raises(ValidationError) as caught:
        await connector_for(recording(seen, answering(CREATE_OK))).post_acte(
            form, [UploadFile("a.pdf", PDF)]
        )
    assert [(r.field, r.code) for r in caught.value.reasons] == [("number", "number_format")]
    assert seen == []


async def test_a_subject_outside_latin1_is_refused_before_any_call() -> None:
    seen: list[httpx.Request] = []
    form = ActeForm(
        nature_code=1,
        number="D1",
        subject="Jumelage avec 北京",
        decision_date=date(2024, 1, 2),
        classification=(9, 1),
    )
    with pytest.raises(ValidationError) as caught:
        await connector_for(recording(seen, answering(CREATE_OK))).post_acte(
            form, [UploadFile("a.pdf", PDF)]
        )
    assert caught.value.reasons[0].field == "subject"
    assert seen == []


async def test_typologies_must_match_the_annexes() -> None:
    with pytest.raises(ValidationError) as caught:
        await connector_for(answering(CREATE_OK)).post_acte(FORM, [UploadFile("a.pdf", PDF)])
    assert caught.value.reasons[0].field == "type_pj"


@pytest.mark.parametrize(
    "message",
    [
        DUPLICATE,
        "La date de décision est une date dans le futur",
        "Le numéro n'est pas correct",
        "Erreur de validation du fichier de l'acte :\nLe fichier de l'acte \" a.odt \" est de "
        'type " application/vnd.oasis.opendocument.text ". Fichier PDF ou XML requis.\n',
    ],
)
async def test_a_ko_with_http_200_is_a_refusal_carrying_s2low_text(message: str) -> None:
    body = s2low_ko(message)
    with pytest.raises(PartnerRefusedError) as caught:
        await connector_for(answering(body)).post_acte(FORM, FILES)
    text = message.strip()
    assert caught.value.message == text
    assert caught.value.reasons == [Reason("acte", "tdt_refused", text)]
    assert caught.value.status == 200
    assert caught.value.retriable is False
    assert type(caught.value) is PartnerRefusedError


def test_the_refusal_fixture_is_latin1_with_php_entities() -> None:
    body = s2low_ko("Le numéro n'est pas correct")
    assert body == b"KO\nLe num\xe9ro n&#039;est pas correct\n"


@pytest.mark.parametrize(
    "body",
    [
        s2low_ko("Échec de l'authentification"),
        s2low_ko("Accès refusé"),
        s2low_ko(
            "La télétransmission nécessite un certificat RGS<br/>Erreur : "
            "Le certificat n'est pas RGS"
        ),
        # actes_transac_get_status.php & co. echo their literal (UTF-8) lines.
        "KO\nÉchec de l'authentification".encode(),
    ],
)
async def test_authentication_refusals_are_auth_errors_naming_the_tdt(body: bytes) -> None:
    with pytest.raises(PartnerAuthError) as caught:
        await connector_for(answering(body)).post_acte(FORM, FILES)
    assert BASE in caught.value.message
    assert caught.value.retriable is False


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (401, {}),
        (403, {}),
        (302, {"Location": "https://tdt.example.test/connexion-status"}),
        (302, {"Location": "/authentication_failed"}),
        (302, {"Location": "/login.php?error=multiple_accounts"}),
    ],
)
async def test_http_authentication_refusals_are_auth_errors(
    status: int, headers: dict[str, str]
) -> None:
    connector = connector_for(lambda request: httpx.Response(status, headers=headers))
    with pytest.raises(PartnerAuthError) as caught:
        await connector.get_status("1")
    assert BASE in caught.value.message
    assert caught.value.status == status


@pytest.mark.parametrize(
    "body",
    [
        b"<import><id>4242</id><resultat>OK</resultat></import>",  # not S²LOW's actes answer
        b"OK\n\n",
        b"",
        b"<html>maintenance</html>",
    ],
)
async def test_create_answers_without_ok_and_an_id_are_unreadable(body: bytes) -> None:
    with pytest.raises(PartnerReplyError):
        await connector_for(answering(body)).post_acte(FORM, FILES)


# -- get_status --------------------------------------------------------------------------------


def test_reference_folder_is_present(reference_dir: Path) -> None:
    assert (reference_dir / "actes" / "samples").is_dir()


async def test_status_4_carries_the_aracte_byte_for_byte(reference_dir: Path) -> None:
    ar_acte = (
        reference_dir / "actes" / "samples" / "006-210600235-20180522-684-AI-1-2_5279.xml"
    ).read_bytes()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"OK\n4\n" + ar_acte)

    status = await connector_for(handler).get_status("4242")
    assert seen[0].url.params["transaction"] == "4242"
    assert seen[0].url.path == "/modules/actes/actes_transac_get_status.php"
    assert status.status == 4
    assert status.status_name == "ACKNOWLEDGED"
    assert status.is_final
    assert status.document == ar_acte.strip()
    parsed = status.parsed_document()
    assert parsed is not None
    assert parsed.type_code == "1-2"
    assert parsed.id_acte == "006-210600235-20180522-684-AI"
    assert parsed.fields["acte_recu.objet"] == "Contrat à durée déterminée - Jean Dupont"


@pytest.mark.parametrize(
    ("body", "state", "message", "has_document"),
    [
        (b"OK\n1\n", 1, "", False),
        (b"OK\r\n3\r\n", 3, "", False),
        (b"OK\n17\n", 17, "", False),
        (b"OK\n18\n", 18, "", False),
        (b"OK\n21\n", 21, "", False),
        (
            "OK\n-1\nErreur de transmission à la préfecture".encode("iso-8859-1"),
            -1,
            "Erreur de transmission à la préfecture",
            False,
        ),
        (
            b"OK\n-1\n<?xml version='1.0'?>\n<actes:AnomalieActe xmlns:actes='urn:x'>"
            b"<actes:Nature>002</actes:Nature></actes:AnomalieActe>Anomalie 002",
            -1,
            "Anomalie 002",
            True,
        ),
    ],
)
async def test_status_answers_are_split_into_state_document_and_message(
    body: bytes, state: int, message: str, has_document: bool
) -> None:
    status = await connector_for(answering(body)).get_status("9")
    assert status.status == state
    assert status.message == message
    assert (status.document is not None) is has_document
    assert status.raw == body


@pytest.mark.parametrize(
    ("state", "final"),
    [(17, False), (18, False), (21, False), (1, False), (-1, True), (0, True), (4, True)],
)
async def test_waiting_states_are_known_and_not_final(state: int, final: bool) -> None:
    status = await connector_for(answering(f"OK\n{state}\n".encode())).get_status("9")
    assert status.is_final is final
    assert status.status_name == TransactionStatus(state).name


async def test_status_of_an_unknown_state_keeps_its_number() -> None:
    status = await connector_for(answering(b"OK\n99\n")).get_status("9")
    assert (status.status, status.status_name, status.is_final) == (99, "UNKNOWN_99", False)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("KO\nNuméro de transaction invalide.".encode(), PartnerRefusedError),
        (b"<html>maintenance</html>", PartnerReplyError),
        (b"OK\nquatre\n", PartnerReplyError),
        (b"", PartnerReplyError),
    ],
)
async def test_unusable_status_answers(body: bytes, error: type[PartnerError]) -> None:
    with pytest.raises(error) as caught:
        await connector_for(answering(body)).get_status("1")
    assert type(caught.value) is error
    assert caught.value.partner == "tdt"


async def test_the_status_ko_keeps_s2low_text_decoded_from_utf8() -> None:
    body = "KO\nNuméro de transaction invalide.".encode()
    with pytest.raises(PartnerRefusedError) as caught:
        await connector_for(answering(body)).get_status("1")
    assert caught.value.message == "Numéro de transaction invalide."


# -- HTTP statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (500, {}, PartnerTransientError, None),
        (502, {}, PartnerTransientError, None),
        (503, {"Retry-After": "7"}, PartnerTransientError, 7.0),
        (504, {}, PartnerTransientError, None),
        (429, {"Retry-After": "120"}, PartnerTransientError, 120.0),
        (429, {"Retry-After": "soon"}, PartnerTransientError, None),
        (400, {}, PartnerPermanentError, None),
        (404, {}, PartnerPermanentError, None),
        (413, {}, PartnerPermanentError, None),
        (302, {"Location": "/modules/actes/index.php"}, PartnerReplyError, None),
    ],
)
async def test_http_statuses_map_to_the_error_tree(
    status: int, headers: dict[str, str], error: type[PartnerError], retry_after: float | None
) -> None:
    connector = connector_for(lambda request: httpx.Response(status, headers=headers))
    with pytest.raises(PartnerError) as caught:
        await connector.get_status("1")
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.retry_after == retry_after
    assert caught.value.retriable is (error is PartnerTransientError)


async def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    connector = connector_for(lambda request: httpx.Response(503, headers={"Retry-After": when}))
    with pytest.raises(PartnerTransientError) as caught:
        await connector.list_prefecture_documents()
    assert caught.value.retry_after is not None
    assert 80 <= caught.value.retry_after <= 90


# -- prefecture messages -----------------------------------------------------------------------

_MESSAGE_3_1 = "034-213400021-20240305-D2024_017-DE-3-1"
ARCHIVE = pack_archive([
    ("TACT--SPREF0341-213400021-20240305-1.xml",
     build_envelope_pref("034", "213400021", [f"{_MESSAGE_3_1}_0.xml"])),
    (f"{_MESSAGE_3_1}_0.xml",
     build_demande_piece_complementaire("034-213400021-20240228-D2024_017-DE",
                                        date(2024, 3, 5), "Pièce manquante : annexe 2",
                                        f"{_MESSAGE_3_1}_1.pdf")),
    (f"{_MESSAGE_3_1}_1.pdf", sample_pdf("Demande de pieces complementaires")),
])
"""A 3-1's .tar.gz as ``actes_download_file.php?env=`` sends it: the préfecture's envelope,
the message, its letter."""


async def whole(connector: S2lowConnector, document_id: str) -> bytes:
    return await connector.get_prefecture_document(document_id)


async def streamed(connector: S2lowConnector, document_id: str) -> bytes:
    """``save_prefecture_document`` into a store that joins the chunks it is handed."""
    received: list[bytes] = []

    async def store(chunks: AsyncIterator[bytes]) -> bytes:
        received.clear()  # a retried attempt starts again
        received.extend([chunk async for chunk in chunks])
        return b"".join(received)

    return await connector.save_prefecture_document(document_id, store)


FETCHES = pytest.mark.parametrize("fetch", [whole, streamed], ids=["whole", "streamed"])
Fetch = Callable[[S2lowConnector, str], Any]
DOCUMENT_ROWS = [
    {
        "id": "51",
        "type": "3",
        "related_transaction_id": "4242",
        "number": "D2024_017",
        "unique_id": "034-213400021-20240228-D2024_017-DE",
        "last_status_id": "7",
    },
    {
        "id": "52",
        "type": "2",
        "related_transaction_id": "4242",
        "number": "D2024_017",
        "unique_id": "034-213400021-20240228-D2024_017-DE",
        "last_status_id": "21",
    },
]


def s2low_documents(location: str = "actes_download_file.php?env=77") -> Handler:
    """``actes_transac_get_document.php`` redirects; ``actes_download_file.php`` sends the file."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/modules/actes/api/list_document_prefecture.php":
            return httpx.Response(200, content=php_json(DOCUMENT_ROWS))
        if request.url.path == "/modules/actes/actes_transac_get_document.php":
            return httpx.Response(302, headers={"Location": location}, content=b"")
        if request.url.path == "/modules/actes/actes_download_file.php":
            return httpx.Response(
                200,
                headers={
                    "Content-Type": "application/x-gzip",
                    "Content-Disposition": 'attachment; filename="enveloppe.tar.gz"',
                },
                content=ARCHIVE,
            )
        if request.url.path == "/modules/actes/api/document_prefecture_mark_as_read.php":
            return httpx.Response(200, content=b'{"result":"ok"}')
        return httpx.Response(404)

    return handler


async def test_prefecture_documents_are_listed_in_s2low_row_shape() -> None:
    refs = await connector_for(s2low_documents()).list_prefecture_documents()
    assert [(r.id, r.type, r.related_transaction_id, r.last_status_id) for r in refs] == [
        ("51", "3", "4242", 7),
        ("52", "2", "4242", 21),
    ]
    assert refs[0].unique_id == "034-213400021-20240228-D2024_017-DE"
    assert refs[0].number == "D2024_017"


async def test_document_rows_with_json_numbers_are_read_alike() -> None:
    body = b'[{"id":51,"type":3,"related_transaction_id":4242,"number":"D1",'
    body += b'"unique_id":"x","last_status_id":7}]'
    (ref,) = await connector_for(answering(body)).list_prefecture_documents()
    assert (ref.id, ref.type, ref.related_transaction_id, ref.last_status_id) == (
        "51",
        "3",
        "4242",
        7,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"unexpected": 1}',
        b'[{"type": "2"}]',
        b'[{"id": "1"}]',
        b'[{"id": "1", "type": "3-1"}]',
        b'[{"id": "1", "type": "6"}]',
        b'["x"]',
        b"",
    ],
)
async def test_unreadable_document_listings(body: bytes) -> None:
    with pytest.raises(PartnerReplyError):
        await connector_for(answering(body)).list_prefecture_documents()


@FETCHES
async def test_the_document_redirect_is_followed_on_the_same_host(fetch: Fetch) -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, s2low_documents()))
    assert await fetch(connector, "51") == ARCHIVE
    assert [r.url.path for r in seen] == [
        "/modules/actes/actes_transac_get_document.php",
        "/modules/actes/actes_download_file.php",
    ]
    assert seen[0].url.params["id"] == "51"
    assert str(seen[1].url) == f"{BASE}/modules/actes/actes_download_file.php?env=77"
    await connector.mark_prefecture_document_read("51")
    assert seen[2].url.path == "/modules/actes/api/document_prefecture_mark_as_read.php"
    assert seen[2].url.params["transaction_id"] == "51"


@FETCHES
async def test_an_absolute_redirect_to_the_same_origin_is_followed(fetch: Fetch) -> None:
    location = f"{BASE}:443/modules/actes/actes_download_file.php?env=77"
    assert await fetch(connector_for(s2low_documents(location)), "51") == ARCHIVE


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.test/modules/actes/actes_download_file.php?env=77",
        "http://tdt.example.test/modules/actes/actes_download_file.php?env=77",
        "https://tdt.example.test:8443/modules/actes/actes_download_file.php?env=77",
        "https://user@tdt.example.test/modules/actes/actes_download_file.php?env=77",
        "/modules/actes/actes_transac_show.php?id=51",
        "../../modules/helios/helios_download_acquit.php?id=1",
        "",
    ],
)
@FETCHES
async def test_a_redirect_elsewhere_is_refused_without_following(
    location: str, fetch: Fetch,
) -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, s2low_documents(location)))
    with pytest.raises(PartnerReplyError) as caught:
        await fetch(connector, "51")
    assert type(caught.value) is PartnerReplyError
    assert len(seen) == 1


@FETCHES
async def test_a_redirect_to_the_login_page_is_an_auth_error(fetch: Fetch) -> None:
    connector = connector_for(s2low_documents("https://tdt.example.test/connexion-status"))
    with pytest.raises(PartnerAuthError):
        await fetch(connector, "51")


@FETCHES
async def test_a_second_redirect_is_not_followed(fetch: Fetch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("actes_transac_get_document.php"):
            return httpx.Response(302, headers={"Location": "actes_download_file.php?env=77"})
        # actes_download_file.php sends the browser home when the envelope cannot be read
        return httpx.Response(302, headers={"Location": "https://tdt.example.test/"})

    with pytest.raises(PartnerReplyError):
        await fetch(connector_for(handler), "51")


@FETCHES
@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("KO\nNuméro de transaction invalide.".encode(), PartnerRefusedError),
        (b"2-21-51\n3-7-52\n", PartnerReplyError),  # the messages of an acte's id
    ],
)
async def test_a_document_answer_without_redirect(
    body: bytes, error: type[PartnerError], fetch: Fetch,
) -> None:
    with pytest.raises(error) as caught:
        await fetch(connector_for(answering(body)), "4242")
    assert type(caught.value) is error


@FETCHES
async def test_a_downloaded_document_that_is_not_gzip_is_unreadable(fetch: Fetch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("actes_transac_get_document.php"):
            return httpx.Response(302, headers={"Location": "actes_download_file.php?env=77"})
        return httpx.Response(200, content=b"\x00" * 1024)

    with pytest.raises(PartnerReplyError):
        await fetch(connector_for(handler), "51")


async def test_a_streamed_download_is_tried_again_whole_after_a_transient_failure() -> None:
    """Streamed, a failed attempt is tried again from the first hop (the store was handed a
    stream that failed: it starts again with a fresh one), ``redirect_read_attempts`` in all."""
    seen: list[str] = []
    pauses: list[float] = []
    failures = {"actes_transac_get_document.php": 1, "actes_download_file.php": 1}
    documents = s2low_documents()

    def flaky(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        seen.append(name)
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            return httpx.Response(503, content=b"busy")
        return documents(request)

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    assert await streamed(connector_for(flaky, sleep=sleep), "51") == ARCHIVE
    assert seen == ["actes_transac_get_document.php", "actes_transac_get_document.php",
                    "actes_download_file.php", "actes_transac_get_document.php",
                    "actes_download_file.php"]
    assert pauses == [0.5, 1.0]


@pytest.mark.parametrize("fetch", [whole], ids=["whole"])
async def test_each_hop_of_a_redirected_download_is_retried_after_a_transient_failure(
    fetch: Fetch,
) -> None:
    seen: list[httpx.Request] = []
    pauses: list[float] = []
    failures = {"actes_transac_get_document.php": 2, "actes_download_file.php": 1}
    documents = s2low_documents()

    def flaky(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            return httpx.Response(503, content=b"busy")
        return documents(request)

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    assert await fetch(connector_for(flaky, sleep=sleep), "51") == ARCHIVE
    assert [r.url.path.rsplit("/", 1)[-1] for r in seen] == [
        "actes_transac_get_document.php",
        "actes_transac_get_document.php",
        "actes_transac_get_document.php",
        "actes_download_file.php",
        "actes_download_file.php",
    ]
    assert pauses == [0.5, 1.0, 0.5]


async def test_a_download_that_keeps_failing_ends_transient_after_its_attempts() -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, answering(b"", 503)))
    with pytest.raises(PartnerTransientError):
        await connector.get_stamped_acte("4242")
    assert len(seen) == 3


async def test_a_creation_is_never_sent_twice_by_the_connector() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(PartnerTransientError):
        await connector_for(recording(seen, answering(b"", 503))).post_acte(FORM, FILES)
    assert len(seen) == 1
    with pytest.raises(PartnerTransientError):
        await connector_for(recording(seen, answering(b"", 503))).cancel("4242")
    assert len(seen) == 2


@pytest.mark.parametrize("body", [b'{"result":"ko"}', b"[]", b"nope"])
async def test_mark_read_wants_s2low_ok_object(body: bytes) -> None:
    with pytest.raises(PartnerReplyError):
        await connector_for(answering(body)).mark_prefecture_document_read("51")


# -- size caps ---------------------------------------------------------------------------------


class CountingStream(httpx.AsyncByteStream):
    """An endless answer that counts what was pulled from it."""

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk
        self.pulled = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.pulled += 1
            yield self.chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_an_endless_status_answer_stops_at_the_status_cap() -> None:
    stream = CountingStream(b"x" * 1024)
    connector = connector_for(
        lambda request: httpx.Response(200, stream=stream), caps=ReplyCaps(status=8 * 1024)
    )
    with pytest.raises(PartnerReplyTooLargeError) as caught:
        await connector.get_status("1")
    assert caught.value.retriable is False
    assert stream.pulled == 9  # one chunk past the cap, then it stops reading
    assert stream.closed


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    stream = CountingStream(b"x")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10**9)}, stream=stream)

    with pytest.raises(PartnerReplyTooLargeError):
        await connector_for(handler).list_prefecture_documents()
    assert stream.pulled == 0


async def test_caps_are_per_endpoint_documents_may_be_larger() -> None:
    big = gzip.compress(b"") + b"\x00" * 200_000
    caps = ReplyCaps(text=1024, status=1024, listing=1024, document=300_000)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("actes_transac_get_document.php"):
            return httpx.Response(302, headers={"Location": "actes_download_file.php?env=1"})
        return httpx.Response(200, content=big)

    connector = connector_for(handler, caps=caps)
    assert await connector.get_prefecture_document("51") == big
    assert await streamed(connector, "51") == big
    with pytest.raises(PartnerReplyTooLargeError):
        await connector.get_status("1")
    with pytest.raises(PartnerReplyTooLargeError):
        await connector_for(handler, caps=ReplyCaps(document=100_000)).get_prefecture_document("5")
    with pytest.raises(PartnerReplyTooLargeError):
        await streamed(connector_for(handler, caps=ReplyCaps(document=100_000)), "5")


def test_default_caps_allow_s2low_archive_limit_and_keep_text_small() -> None:
    caps = ReplyCaps()
    assert caps.document == 150 * 1024 * 1024
    assert caps.text <= 64 * 1024
    assert caps.status < caps.document and caps.listing < caps.document


async def test_a_slow_answer_is_bounded_in_time() -> None:
    class Slow(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            while True:
                await asyncio.sleep(0.02)
                yield b"x"

    connector = connector_for(lambda r: httpx.Response(200, stream=Slow()), body_deadline=0.1)
    with pytest.raises(PartnerTimeoutError):
        await connector.get_status("1")


# -- list_actes and find_acte ------------------------------------------------------------------


def acte_row(
    transaction_id: str, number: str, day: str = "2024-02-28", kind: str = "1"
) -> dict[str, str]:
    """A row of ``getListByStatusAndAuthority``: every value a string, ``date`` the decision."""
    return {
        "id": transaction_id,
        "subject": "Délibération relative à l'école",
        "number": number,
        "date": day,
        "nature_descr": "Délibérations",
        "classification": "7.1.2",
        "type": kind,
    }


def s2low_listing(
    by_state: dict[int, list[dict[str, str]]],
    seen: list[httpx.Request] | None = None,
    *,
    authority_id: int = 12,
) -> Handler:
    """``api/list_actes.php``: one state, ``offset``/``limit`` paging, newest first."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/modules/actes/api/list_actes.php"
        if seen is not None:
            seen.append(request)
        params = request.url.params
        status_id = int(params.get("status_id", "0"))
        offset = int(params.get("offset", "0"))
        limit = int(params.get("limit", "100"))
        rows = by_state.get(status_id, [])[offset : offset + limit]
        answer = {
            "status_id": status_id,
            "authority_id": authority_id,
            "offset": offset,
            "limit": limit,
            "transactions": rows,
        }
        return httpx.Response(200, content=php_json(answer))

    return handler


async def test_list_actes_pages_through_one_state_with_s2low_parameters() -> None:
    seen: list[httpx.Request] = []
    rows = [acte_row(str(1000 - i), f"N{i}") for i in range(7)]
    connector = connector_for(s2low_listing({4: rows}, seen), listing_page_size=3)
    listed = await connector.list_actes(4, min_date=date(2024, 2, 27))
    assert [r.id for r in listed] == [r["id"] for r in rows]
    assert [dict(r.url.params) for r in seen] == [
        {"status_id": "4", "offset": str(offset), "limit": "3", "min_date": "2024-02-27"}
        for offset in (0, 3, 6)
    ]
    first = listed[0]
    assert (first.type, first.number, first.decision_date, first.status) == (
        "1",
        "N0",
        date(2024, 2, 28),
        4,
    )
    assert first.subject == "Délibération relative à l'école"  # from json_encode's \u00e9
    assert first.nature_descr == "Délibérations"


async def test_a_full_last_page_costs_one_more_empty_page() -> None:
    seen: list[httpx.Request] = []
    rows = [acte_row(str(i), f"N{i}") for i in range(4)]
    connector = connector_for(s2low_listing({1: rows}, seen), listing_page_size=2)
    assert len(await connector.list_actes(1)) == 4
    assert [r.url.params["offset"] for r in seen] == ["0", "2", "4"]
    assert "min_date" not in seen[0].url.params


async def test_too_many_pages_cannot_prove_anything() -> None:
    rows = [acte_row(str(i), f"N{i}") for i in range(10)]
    connector = connector_for(s2low_listing({4: rows}), listing_page_size=2, max_listing_pages=3)
    with pytest.raises(PartnerPermanentError):
        await connector.list_actes(4)


async def test_find_acte_finds_the_type_1_row_and_stops_listing() -> None:
    seen: list[httpx.Request] = []
    states = {
        4: [acte_row("90", "OTHER")],
        3: [
            acte_row("4301", "D2024_017", kind="6"),  # its cancellation shares the number
            acte_row("4242", "D2024_017"),
        ],
    }
    connector = connector_for(s2low_listing(states, seen))
    found = await connector.find_acte(number="D2024_017", decision_date=date(2024, 2, 28))
    assert found == "4242"
    asked = [int(r.url.params["status_id"]) for r in seen]
    assert asked == [17, 18, 1, 2, 3]
    assert {r.url.params["min_date"] for r in seen} == {"2024-02-27"}


async def test_find_acte_lists_every_state_before_saying_absent() -> None:
    seen: list[httpx.Request] = []
    states = {
        4: [acte_row("90", "D2024_018")],
        -1: [acte_row("91", "D2024_0170")],
        3: [acte_row("92", "D2024_017", kind="3")],  # a prefecture message for that number
        21: [acte_row("93", "D2024_017")],  # never listed: a state of messages, not actes
    }
    connector = connector_for(s2low_listing(states, seen))
    assert await connector.find_acte(number="D2024_017", decision_date=date(2024, 2, 28)) is None
    asked = [int(r.url.params["status_id"]) for r in seen]
    assert asked == list(LISTING_STATES)
    assert set(asked) == {17, 18, 1, 2, 3, 4, 5, -1, 0, 19, 12, 13, 14, 20, 22, 16}
    assert asked.index(-1) > asked.index(3) and asked.index(0) > asked.index(4)


async def test_find_acte_lists_states_a_few_at_a_time() -> None:
    listing = s2low_listing({})
    in_flight = 0
    most = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return listing(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow), follow_redirects=False)
    connector = S2lowConnector(client, base_url=BASE, sleep=no_sleep, listing_concurrency=4)
    assert await connector.find_acte(number="D1", decision_date=date(2024, 2, 28)) is None
    assert most == 4  # four listings overlap: a lookup costs its slowest windows, not 16 calls


async def test_find_acte_finds_an_acte_in_error_or_cancelled() -> None:
    for state in (-1, 0):
        states = {state: [acte_row("77", "D2024_017")]}
        found = await connector_for(s2low_listing(states)).find_acte(
            number="D2024_017", decision_date=date(2024, 2, 28)
        )
        assert found == "77"


async def test_find_acte_ignores_the_number_of_an_acte_decided_another_day() -> None:
    states = {4: [acte_row("77", "D2024_017", day="2023-12-01")]}
    found = await connector_for(s2low_listing(states)).find_acte(
        number="D2024_017", decision_date=date(2024, 2, 28)
    )
    assert found is None


async def test_find_acte_retries_a_flaky_page_then_answers() -> None:
    calls: Counter[int] = Counter()
    pauses: list[float] = []
    listing = s2low_listing({2: [acte_row("4242", "D2024_017")]})

    def flaky(request: httpx.Request) -> httpx.Response:
        status_id = int(request.url.params["status_id"])
        calls[status_id] += 1
        if calls[status_id] <= 2:  # every state fails twice, the third try answers
            headers = {"Retry-After": "3"} if status_id == 1 else {}
            return httpx.Response(503, headers=headers)
        return listing(request)

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    connector = connector_for(flaky, sleep=sleep)
    found = await connector.find_acte(number="D2024_017", decision_date=date(2024, 2, 28))
    assert found == "4242"
    assert dict(calls) == {17: 3, 18: 3, 1: 3, 2: 3}
    assert pauses == [0.5, 1.0] * 2 + [3.0, 3.0] + [0.5, 1.0]


async def test_find_acte_gives_up_after_its_attempts_with_a_transient_error() -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, answering(b"", 502)), listing_attempts=3)
    with pytest.raises(PartnerTransientError):
        await connector.find_acte(number="D1", decision_date=date(2024, 2, 28))
    assert len(seen) == 3  # the first state, three times: no answer is made of the others


async def test_find_acte_does_not_retry_a_permanent_failure() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(PartnerPermanentError):
        await connector_for(recording(seen, answering(b"", 404))).find_acte(
            number="D1", decision_date=date(2024, 2, 28)
        )
    assert len(seen) == 1


async def test_find_acte_is_bounded_in_time() -> None:
    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(0.05)

    connector = connector_for(answering(b"", 503), sleep=slow_sleep, find_deadline=0.12)
    with pytest.raises(PartnerTimeoutError):
        await connector.find_acte(number="D1", decision_date=date(2024, 2, 28))


async def test_find_acte_refuses_a_listing_that_names_no_authority() -> None:
    # The legacy controller does not stop on a failed authentication: authority 0, no rows.
    connector = connector_for(s2low_listing({}, authority_id=0))
    with pytest.raises(PartnerAuthError):
        await connector.find_acte(number="D1", decision_date=date(2024, 2, 28))


async def test_find_acte_refuses_a_listing_of_another_state() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # an S²LOW that ignores status_id answers its default, state 0
        body = {"status_id": 0, "authority_id": 12, "offset": 0, "limit": 100, "transactions": []}
        return httpx.Response(200, content=php_json(body))

    with pytest.raises(PartnerReplyError):
        await connector_for(handler).find_acte(number="D1", decision_date=date(2024, 2, 28))


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, PartnerPermanentError), (503, PartnerTransientError), (500, PartnerTransientError)],
)
async def test_find_acte_when_the_listing_fails(status: int, error: type[PartnerError]) -> None:
    connector = connector_for(lambda request: httpx.Response(status))
    with pytest.raises(error) as caught:
        await connector.find_acte(number="D1", decision_date=date(2024, 2, 28))
    assert type(caught.value) is error


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"status_id":1,"authority_id":12,"offset":0,"transactions":[{"number":"D1"}]}',
        b'{"status_id":17,"authority_id":12,"offset":0,"transactions":[{"id":["x"]}]}',
    ],
)
async def test_unreadable_acte_listings(body: bytes) -> None:
    with pytest.raises(PartnerReplyError):
        await connector_for(answering(body)).find_acte(number="D1", decision_date=date(2024, 1, 1))


async def test_a_listing_ko_is_an_auth_error() -> None:
    body = s2low_ko("Échec de l'authentification")
    with pytest.raises(PartnerAuthError):
        await connector_for(answering(body)).list_actes(1)


# -- stamped acte ------------------------------------------------------------------------------

STAMPED = b"%PDF-1.7\n%stamped by the TdT\n"


def s2low_tampon(first: httpx.Response) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/modules/actes/actes_transac_get_tampon.php":
            return first
        if request.url.path == "/modules/actes/actes_download_file.php":
            assert request.url.params["tampon"] == "true"
            return httpx.Response(200, headers={"Content-Type": "application/pdf"}, content=STAMPED)
        return httpx.Response(404)

    return handler


async def test_the_stamped_acte_follows_the_tampon_redirect() -> None:
    seen: list[httpx.Request] = []
    # the script sends "Location:  actes_download_file.php?..." (two spaces)
    first = httpx.Response(
        302, headers={"Location": "  actes_download_file.php?file=901&tampon=true"}
    )
    connector = connector_for(recording(seen, s2low_tampon(first)))
    assert await connector.get_stamped_acte("4242") == STAMPED
    assert seen[0].url.params["transaction"] == "4242"
    assert str(seen[1].url) == f"{BASE}/modules/actes/actes_download_file.php?file=901&tampon=true"


@pytest.mark.parametrize(
    ("first", "error"),
    [
        (httpx.Response(200, content=b"KO\nPas d'acquittement recu"), PartnerRefusedError),
        (httpx.Response(200, content=b""), PartnerRefusedError),  # no *.pdf file to stamp
        (httpx.Response(200, content="KO\nAccès refusé".encode()), PartnerAuthError),
        (
            httpx.Response(302, headers={"Location": "https://cdn.example.test/x.pdf"}),
            PartnerReplyError,
        ),
    ],
)
async def test_stamped_acte_refusals(first: httpx.Response, error: type[PartnerError]) -> None:
    with pytest.raises(error) as caught:
        await connector_for(s2low_tampon(first)).get_stamped_acte("4242")
    assert type(caught.value) is error


async def test_a_stamped_acte_that_is_not_a_pdf_is_unreadable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("get_tampon.php"):
            return httpx.Response(302, headers={"Location": "actes_download_file.php?file=1"})
        return httpx.Response(200, content=b"<html>erreur</html>")

    with pytest.raises(PartnerReplyError):
        await connector_for(handler).get_stamped_acte("4242")


# -- cancel, replies, classification -----------------------------------------------------------


async def test_cancel_posts_api_and_id_and_reads_the_new_transaction_id() -> None:
    seen: list[httpx.Request] = []
    result = await connector_for(recording(seen, answering(s2low_ok("4300\n")))).cancel("4242")
    assert result.transaction_id == "4300"
    assert seen[0].url.path == "/modules/actes/actes_transac_cancel.php"
    assert dict(httpx.QueryParams(seen[0].content.decode())) == {"api": "1", "id": "4242"}


async def test_a_refused_cancellation_carries_s2low_text() -> None:
    text = "Impossible d'annuler une transaction qui n'est pas en état « Acquittement reçu »."
    with pytest.raises(PartnerRefusedError) as caught:
        await connector_for(answering(s2low_ko(text))).cancel("4242")
    assert caught.value.message == text
    assert caught.value.reasons == [Reason("cancel", "tdt_refused", text)]


@pytest.mark.parametrize(("type_code", "type_envoie"), sorted(REPLY_TYPE_ENVOIE.items()))
async def test_replies_send_the_type_envoie_s2low_accepts(type_code: str, type_envoie: str) -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, answering(s2low_ok("501\n"))))
    result = await connector.post_reply("51", type_code, None, [UploadFile("lettre.pdf", PDF)])
    assert result.transaction_id == "501"
    fields, _ = multipart_of(seen[0])
    assert fields["type_envoie"] == [type_envoie.encode()]
    assert "api" not in seen[0].url.params  # api in POST only, as Pastell: OK\n<id>\n\n
    assert fields["api"] == [b"1"]


def test_reply_kinds_are_those_s2low_takes() -> None:
    assert REPLY_TYPE_ENVOIE == {"2-2": "2", "3-3": "3", "3-4": "4", "4-3": "3", "4-4": "4"}


@pytest.mark.parametrize("type_code", ["3-2", "4-2", "3-5", "2-1", "5-1"])
async def test_acknowledgements_and_prefecture_kinds_are_not_posted(type_code: str) -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(recording(seen, answering(s2low_ok("501\n"))))
    with pytest.raises(ValidationError) as caught:
        await connector.post_reply("51", type_code, None, [UploadFile("a.pdf", PDF)])
    assert caught.value.reasons[0].code == "unknown_reply_type"
    assert seen == []


async def test_post_reply_sends_files_typologies_and_a_latin1_description() -> None:
    seen: list[httpx.Request] = []
    connector = connector_for(
        recording(seen, answering("OK : id généré : 502\n".encode("latin-1")))
    )
    result = await connector.post_reply(
        "51",
        "3-4",
        ReplyForm(description="Pièces demandées"),
        [UploadFile("lettre.pdf", PDF), UploadFile("piece.pdf", PDF)],
    )
    assert result.transaction_id == "502"  # the answer when api is in the query also reads
    fields, files = multipart_of(seen[0])
    assert fields["id"] == [b"51"]
    assert fields["type_acte"] == [b"99_AU"]
    assert fields["type_pj[]"] == [b"99_AU"]
    assert fields["description"] == ["Pièces demandées".encode("iso-8859-1")]
    assert files["acte_pdf_file"] == [PDF]
    assert len(files["acte_attachments[]"]) == 1


async def test_a_refused_reply_in_the_query_api_form_is_a_refusal() -> None:
    body = "KO : Transaction inconnue".encode("iso-8859-1")
    with pytest.raises(PartnerRefusedError) as caught:
        await connector_for(answering(body)).post_reply(
            "91", "2-2", None, [UploadFile("r.pdf", PDF)]
        )
    assert caught.value.message == "Transaction inconnue"
    assert caught.value.reasons == [Reason("reply", "tdt_refused", "Transaction inconnue")]


async def test_classification_fetch_returns_the_xml_and_refuses_anything_else() -> None:
    xml = b"<?xml version='1.0' encoding='ISO-8859-1'?><RetourClassification/>\r\n"
    assert await connector_for(answering(xml)).fetch_classification() == xml
    with pytest.raises(PartnerRefusedError):
        await connector_for(answering(s2low_ko("Pas de classification"))).fetch_classification()
    with pytest.raises(PartnerReplyError):
        await connector_for(answering(b"<RetourClassification")).fetch_classification()


async def test_classification_request_returns_what_follows_ok() -> None:
    assert await connector_for(answering(s2low_ok("4500"))).request_classification() == "4500"


# -- nothing of the sandbox --------------------------------------------------------------------


def test_the_connector_relies_on_no_sandbox_only_header_or_path() -> None:
    package = Path(connectors.tdt.__file__).parent
    owned = ["__init__", "s2low", "replies", "models", "errors", "multipart", "text", "rules"]
    for source in (package / f"{name}.py" for name in owned):
        text = source.read_text(encoding="utf-8").lower()
        assert "x-relais" not in text, source.name
        assert "list_transactions" not in text, source.name
        assert "idempotency" not in text, source.name
        assert "/sandbox" not in text, source.name


async def test_the_client_factory_keeps_redirects_off() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": f"{BASE}/modules/actes/index.php"})

    client = build_tdt_client(BASE, transport=httpx.MockTransport(handler))
    async with client:
        assert client.follow_redirects is False
        with pytest.raises(PartnerReplyError):
            await S2lowConnector(client, base_url=BASE).get_status("1")
    assert len(seen) == 1


# -- transport errors --------------------------------------------------------------------------


def test_retry_after_parsing() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 15 ") == 15.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-5") is None
    assert parse_retry_after("tomorrow") is None


def _request_error_classes() -> set[type[httpx.RequestError]]:
    """Every request error class httpx defines (the ones a transport may raise)."""
    found: set[type[httpx.RequestError]] = set()
    pending: list[type[httpx.RequestError]] = [httpx.RequestError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("httpx") and sub not in found:
                found.add(sub)
                pending.append(sub)
    for name in dir(httpx):
        obj = getattr(httpx, name)
        if isinstance(obj, type) and issubclass(obj, httpx.RequestError):
            found.add(obj)
    found.discard(httpx.RequestError)
    found.discard(httpx.TransportError)
    return found


def test_every_httpx_request_error_has_a_row_in_the_table() -> None:
    classes = _request_error_classes()
    assert httpx.ConnectTimeout in classes and httpx.RemoteProtocolError in classes
    unmapped = sorted(c.__name__ for c in classes if error_class_for(c) is None)
    assert unmapped == [], f"httpx request errors without a Relais mapping: {unmapped}"


def test_the_table_maps_no_base_class_that_would_hide_a_new_httpx_error() -> None:
    covered = {httpx_type for httpx_type, _ in TRANSPORT_ERRORS}
    assert httpx.RequestError not in covered
    assert httpx.TransportError not in covered

    class FutureTransportError(httpx.TransportError):
        pass

    assert error_class_for(FutureTransportError) is None


EXPECTED = {
    httpx.ConnectTimeout: PartnerTimeoutError,
    httpx.ReadTimeout: PartnerTimeoutError,
    httpx.WriteTimeout: PartnerTimeoutError,
    httpx.PoolTimeout: PartnerTimeoutError,
    httpx.ConnectError: PartnerTransientError,
    httpx.ReadError: PartnerTransientError,
    httpx.WriteError: PartnerTransientError,
    httpx.CloseError: PartnerTransientError,
    httpx.RemoteProtocolError: PartnerTransientError,
    httpx.ProxyError: PartnerTransientError,
    httpx.LocalProtocolError: PartnerPermanentError,
    httpx.ProtocolError: PartnerTransientError,
    httpx.UnsupportedProtocol: PartnerPermanentError,
    httpx.DecodingError: PartnerReplyError,
    httpx.TooManyRedirects: PartnerReplyError,
}


def test_the_expectations_cover_every_concrete_httpx_request_error() -> None:
    concrete = {c for c in _request_error_classes() if not c.__subclasses__()}
    assert concrete <= set(EXPECTED), sorted(c.__name__ for c in concrete - set(EXPECTED))


@pytest.mark.parametrize("httpx_error", list(EXPECTED), ids=lambda c: c.__name__)
async def test_transport_errors_are_translated(httpx_error: type[httpx.RequestError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx_error("boom", request=request)

    with pytest.raises(PartnerError) as caught:
        await connector_for(handler).get_status("1")
    assert type(caught.value) is EXPECTED[httpx_error]
    assert isinstance(caught.value.__cause__, httpx_error)
    assert caught.value.partner == "tdt"
    assert caught.value.retriable is issubclass(EXPECTED[httpx_error], PartnerTransientError)


async def test_an_unmapped_transport_error_still_leaves_as_a_retriable_partner_error() -> None:
    class FutureTransportError(httpx.TransportError):
        pass

    def handler(request: httpx.Request) -> httpx.Response:
        raise FutureTransportError("new in httpx 9", request=request)

    with pytest.raises(PartnerTransientError):
        await connector_for(handler).get_status("1")
