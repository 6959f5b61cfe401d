"""The S²LOW connector against ``httpx.MockTransport``: requests, replies, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from connectors.tdt import (
    IDEMPOTENCY_HEADER,
    ActeForm,
    ReplyForm,
    S2lowConnector,
    UploadFile,
    build_tdt_client,
)
from connectors.tdt.errors import TRANSPORT_ERRORS, error_class_for, parse_retry_after
from relais.errors import (
    ConfigurationError,
    PartnerError,
    PartnerPermanentError,
    PartnerReplyError,
    PartnerTimeoutError,
    PartnerTransientError,
    ValidationError,
)

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
CREATE_REPLY = (
    b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    b"<import><id>4242</id><resultat>OK</resultat><message>ok</message></import>"
)

Handler = Callable[[httpx.Request], httpx.Response]


def connector_for(handler: Handler) -> S2lowConnector:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return S2lowConnector(client, base_url=BASE)


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


# -- post_acte -----------------------------------------------------------------------------


async def test_post_acte_sends_the_s2low_form_with_a_latin1_subject() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=CREATE_REPLY)

    connector = connector_for(handler)
    result = await connector.post_acte(
        FORM,
        [UploadFile("acte.pdf", PDF), UploadFile("annexe budget.pdf", PDF + b"annex")],
        idempotency_key="flow-1:post_acte",
    )

    assert result.transaction_id == "4242"
    assert result.partner == "tdt"
    assert result.http_status == 200
    assert result.raw == CREATE_REPLY
    assert result.elapsed >= 0
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/modules/actes/actes_transac_create.php"
    assert request.headers[IDEMPOTENCY_HEADER] == "flow-1:post_acte"
    assert int(request.headers["content-length"]) == len(request.content)
    fields, files = multipart_of(request)
    assert fields["api"] == [b"1"]
    assert fields["nature_code"] == [b"1"]
    assert fields["number"] == [b"D2024_017"]
    # ISO-8859-1 bytes, and the typographic apostrophe folded to ASCII.
    assert fields["subject"] == ["Délibération relative à l'école".encode("iso-8859-1")]
    assert fields["decision_date"] == [b"2024-02-28"]
    assert (fields["classif1"], fields["classif2"], fields["classif3"]) == ([b"7"], [b"1"], [b"2"])
    assert "classif4" not in fields
    assert fields["document_papier"] == [b"0"]
    assert fields["type_acte"] == [b"99_DE"]
    assert fields["type_pj[]"] == [b"99_AU"]
    assert files["acte_pdf_file"] == [PDF]
    assert files["acte_attachments[]"] == [PDF + b"annex"]


async def test_post_acte_accepts_the_older_plain_text_reply() -> None:
    connector = connector_for(lambda request: httpx.Response(200, content=b"OK\n77\n"))
    result = await connector.post_acte(FORM, [UploadFile("a.pdf", PDF), UploadFile("b.pdf", PDF)])
    assert result.transaction_id == "77"


async def test_post_acte_streams_async_files_with_a_declared_size() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, content=CREATE_REPLY)

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


async def test_a_subject_outside_latin1_is_refused_before_any_call() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=CREATE_REPLY)

    form = ActeForm(
        nature_code=1,
        number="D1",
        subject="Jumelage avec 北京",
        decision_date=date(2024, 1, 2),
        classification=(9, 1),
    )
    with pytest.raises(ValidationError) as caught:
        await connector_for(handler).post_acte(form, [UploadFile("a.pdf", PDF)])
    assert caught.value.reasons[0].field == "subject"
    assert calls == []


async def test_typologies_must_match_the_annexes() -> None:
    connector = connector_for(lambda request: httpx.Response(200, content=CREATE_REPLY))
    with pytest.raises(ValidationError) as caught:
        await connector.post_acte(FORM, [UploadFile("a.pdf", PDF)])  # type_pj has one entry
    assert caught.value.reasons[0].field == "type_pj"


async def test_a_ko_in_a_200_reply_is_a_permanent_error_naming_the_field() -> None:
    body = "KO\nnumber: le numéro est déjà utilisé".encode("iso-8859-1")
    connector = connector_for(lambda request: httpx.Response(200, content=body))
    with pytest.raises(PartnerPermanentError) as caught:
        await connector.post_acte(FORM, [UploadFile("a.pdf", PDF), UploadFile("b.pdf", PDF)])
    assert "déjà utilisé" in caught.value.message
    assert [r.field for r in caught.value.reasons] == ["number"]
    assert caught.value.retriable is False


async def test_an_xml_reply_without_id_is_unreadable() -> None:
    connector = connector_for(lambda request: httpx.Response(200, content=b"<import></import>"))
    with pytest.raises(PartnerReplyError):
        await connector.post_acte(FORM, [UploadFile("a.pdf", PDF), UploadFile("b.pdf", PDF)])


# -- get_status ----------------------------------------------------------------------------


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
        (
            "OK\n-1\nErreur de transmission à la préfecture".encode("iso-8859-1"),
            -1,
            "Erreur de transmission à la préfecture",
            False,
        ),
        (
            b"OK\n-1\n<?xml version='1.0'?>\n<actes:AnomalieActe xmlns:actes='urn:x'>"
            b"<actes:Nature>002</actes:Nature></actes:AnomalieActe>\nAnomalie 002",
            -1,
            "Anomalie 002",
            True,
        ),
        (b"OK\n21\n", 21, "", False),
    ],
)
async def test_status_replies_are_split_into_state_document_and_message(
    body: bytes, state: int, message: str, has_document: bool
) -> None:
    status = await connector_for(lambda request: httpx.Response(200, content=body)).get_status("9")
    assert status.status == state
    assert status.message == message
    assert (status.document is not None) is has_document
    assert status.raw == body


async def test_status_of_an_unknown_state_keeps_its_number() -> None:
    status = await connector_for(lambda r: httpx.Response(200, content=b"OK\n99\n")).get_status("9")
    assert status.status == 99
    assert status.status_name == "UNKNOWN_99"
    assert not status.is_final


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("KO\nNuméro de transaction invalide.".encode(), PartnerPermanentError),
        (b"<html>maintenance</html>", PartnerReplyError),
        (b"OK\nquatre\n", PartnerReplyError),
        (b"", PartnerReplyError),
    ],
)
async def test_unusable_status_replies(body: bytes, error: type[PartnerError]) -> None:
    connector = connector_for(lambda request: httpx.Response(200, content=body))
    with pytest.raises(error) as caught:
        await connector.get_status("1")
    assert type(caught.value) is error
    assert caught.value.partner == "tdt"


# -- error mapping --------------------------------------------------------------------------

NOW = datetime.now(UTC)


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
        (401, {}, PartnerPermanentError, None),
        (403, {}, PartnerPermanentError, None),
        (404, {}, PartnerPermanentError, None),
        (409, {}, PartnerPermanentError, None),
        (413, {}, PartnerPermanentError, None),
        (302, {"Location": "/login.php"}, PartnerPermanentError, None),
    ],
)
async def test_http_statuses_map_to_the_error_tree(
    status: int, headers: dict[str, str], error: type[PartnerError], retry_after: float | None
) -> None:
    connector = connector_for(
        lambda request: httpx.Response(status, headers=headers, content=b"KO\nclassif1: inconnu")
    )
    with pytest.raises(PartnerError) as caught:
        await connector.get_status("1")
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.retry_after == retry_after
    assert caught.value.retriable is (error is PartnerTransientError)
    if status == 400:
        assert [r.field for r in caught.value.reasons] == ["classif1"]


async def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    connector = connector_for(lambda request: httpx.Response(503, headers={"Retry-After": when}))
    with pytest.raises(PartnerTransientError) as caught:
        await connector.list_prefecture_documents()
    assert caught.value.retry_after is not None
    assert 80 <= caught.value.retry_after <= 90


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


# -- other calls ------------------------------------------------------------------------------


async def test_cancel_posts_api_and_id_and_reads_the_new_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"OK\n4300\n")

    result = await connector_for(handler).cancel("4242", idempotency_key="flow-1:cancel")
    assert result.transaction_id == "4300"
    assert seen[0].url.path == "/modules/actes/actes_transac_cancel.php"
    assert dict(httpx.QueryParams(seen[0].content.decode())) == {"api": "1", "id": "4242"}
    assert seen[0].headers[IDEMPOTENCY_HEADER] == "flow-1:cancel"


async def test_classification_fetch_returns_the_xml_and_refuses_anything_else() -> None:
    xml = b"<?xml version='1.0' encoding='ISO-8859-1'?><RetourClassification/>"
    ok = connector_for(lambda request: httpx.Response(200, content=xml))
    assert await ok.fetch_classification() == xml
    ko = connector_for(lambda request: httpx.Response(200, content=b"KO\nno classification"))
    with pytest.raises(PartnerPermanentError):
        await ko.fetch_classification()
    bad = connector_for(lambda request: httpx.Response(200, content=b"<RetourClassification"))
    with pytest.raises(PartnerReplyError):
        await bad.fetch_classification()


async def test_classification_request_returns_the_acknowledgement_text() -> None:
    connector = connector_for(lambda request: httpx.Response(200, content=b"OK\nrequest sent"))
    assert await connector.request_classification() == "request sent"


async def test_prefecture_documents_are_listed_fetched_and_marked_read() -> None:
    seen: list[httpx.Request] = []
    listing = [
        {
            "id": "90",
            "type": "2",
            "related_transaction_id": "4242",
            "number": "D1",
            "last_status_id": "21",
            "date": "2024-03-04",
        },
        {"id": 91, "type": "3-1", "related_transaction_id": None},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("list_document_prefecture.php"):
            return httpx.Response(200, json=listing)
        if request.url.path.endswith("actes_transac_get_document.php"):
            return httpx.Response(200, content=b"\x1f\x8barchive")
        return httpx.Response(200, json={"result": "ok"})

    connector = connector_for(handler)
    refs = await connector.list_prefecture_documents()
    assert [(r.id, r.type_code, r.related_transaction_id) for r in refs] == [
        ("90", "2-1", "4242"),
        ("91", "3-1", None),
    ]
    assert refs[0].date == date(2024, 3, 4)
    assert refs[0].status == 21
    assert await connector.get_prefecture_document("90") == b"\x1f\x8barchive"
    await connector.mark_prefecture_document_read("90")
    assert seen[1].url.params["id"] == "90"
    assert seen[2].url.path == "/modules/actes/api/document_prefecture_mark_as_read.php"
    assert seen[2].url.params["transaction_id"] == "90"


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"unexpected": 1}', b'[{"type": "2"}]', b'[{"id": "1"}]', b'["x"]'],
)
async def test_unreadable_document_listings(body: bytes) -> None:
    connector = connector_for(lambda request: httpx.Response(200, content=body))
    with pytest.raises(PartnerReplyError):
        await connector.list_prefecture_documents()


async def test_post_reply_sends_the_reply_type_and_files() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content="OK : id généré : 501\n".encode("iso-8859-1"))

    connector = connector_for(handler)
    result = await connector.post_reply(
        "91",
        "3-4",
        ReplyForm(description="Pièces demandées"),
        [UploadFile("lettre.pdf", PDF), UploadFile("piece.pdf", PDF)],
    )
    assert result.transaction_id == "501"
    fields, files = multipart_of(seen[0])
    assert seen[0].url.params["api"] == "1"
    assert fields["id"] == [b"91"]
    assert fields["type_envoie"] == [b"4"]
    assert fields["type_acte"] == [b"99_AU"]
    assert fields["type_pj[]"] == [b"99_AU"]
    assert fields["description"] == ["Pièces demandées".encode("iso-8859-1")]
    assert files["acte_pdf_file"] == [PDF]
    assert len(files["acte_attachments[]"]) == 1
    with pytest.raises(ValidationError):
        await connector.post_reply("91", "3-5", None, [UploadFile("a.pdf", PDF)])


def listing_handler(rows: list[dict[str, object]]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/modules/actes/api/list_transactions.php"
        return httpx.Response(200, json={"transactions": rows})

    return handler


async def test_find_by_idempotency_key_prefers_the_exact_key() -> None:
    rows: list[dict[str, object]] = [
        {
            "id": "10",
            "number": "D1",
            "decision_date": "2024-02-28",
            "nature_code": 1,
            "status": 4,
            "idempotency_key": "flow-1:post",
        },
        {
            "id": "12",
            "number": "D1",
            "decision_date": "2024-02-28",
            "nature_code": 1,
            "status": 1,
            "idempotency_key": "flow-9:post",
        },
    ]
    connector = connector_for(listing_handler(rows))
    found = await connector.find_by_idempotency_key(
        "flow-1:post", number="D1", decision_date=date(2024, 2, 28), nature_code=1
    )
    assert found == "10"


async def test_find_by_idempotency_key_matches_number_date_and_nature_on_a_real_listing() -> None:
    rows: list[dict[str, object]] = [
        {"id": "8", "number": "D1", "date": "2024-02-28", "type": "1", "last_status_id": "-1"},
        {"id": "9", "number": "D1", "date": "2024-02-28", "type": "2", "last_status_id": "4"},
        {"id": "11", "number": "D1", "date": "2024-02-27", "type": "1", "last_status_id": "4"},
        {"id": "10", "number": "D1", "date": "2024-02-28", "type": "1", "last_status_id": "3"},
        {"id": "7", "number": "D1", "date": "2024-02-28", "type": "1", "last_status_id": "4"},
    ]
    connector = connector_for(listing_handler(rows))
    found = await connector.find_by_idempotency_key(
        "flow-1:post", number="D1", decision_date=date(2024, 2, 28), nature_code=1
    )
    assert found == "10"  # the latest live match; 8 is in error, 9 and 11 are other actes


async def test_find_by_idempotency_key_returns_none_when_only_dead_transactions_match() -> None:
    rows: list[dict[str, object]] = [
        {"id": "8", "number": "D1", "decision_date": "2024-02-28", "nature_code": 1, "status": 0},
    ]
    connector = connector_for(listing_handler(rows))
    assert (
        await connector.find_by_idempotency_key(
            "k", number="D1", decision_date=date(2024, 2, 28), nature_code=1
        )
        is None
    )


# -- the client factory -----------------------------------------------------------------------


async def test_build_tdt_client_sets_base_url_basic_auth_and_timeout() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"OK\n1\n")

    client = build_tdt_client(
        BASE,
        basic_user="mairie",
        basic_password="s3cret",
        timeout=12.5,
        transport=httpx.MockTransport(handler),
    )
    async with client:
        assert client.timeout.read == 12.5
        assert client.base_url.host == "tdt.example.test"
        await S2lowConnector(client, base_url=BASE).get_status("1")
    assert seen[0].headers["authorization"] == httpx.BasicAuth("mairie", "s3cret")._auth_header


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cert_file": "/nonexistent/cert.pem"},
        {"key_file": "/nonexistent/key.pem"},
        {"basic_user": "only-user"},
        {"ca_file": "/nonexistent/ca.pem"},
    ],
)
def test_build_tdt_client_refuses_bad_configuration(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        build_tdt_client(BASE, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests never open sockets: the default transport would fail loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test tried to open a network connection")

    monkeypatch.setattr("httpcore.AsyncConnectionPool.handle_async_request", refuse)
    yield


async def test_the_inline_ko_of_s2low_replies_is_a_permanent_error() -> None:
    body = "KO : Accès refusé".encode("iso-8859-1")
    connector = connector_for(lambda request: httpx.Response(200, content=body))
    with pytest.raises(PartnerPermanentError) as caught:
        await connector.post_reply("91", "2-2", None, [UploadFile("r.pdf", PDF)])
    assert caught.value.message.endswith("TdT answered KO: Accès refusé")
