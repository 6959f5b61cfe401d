"""The hub API: authenticated, streamed blob uploads and downloads."""

from __future__ import annotations

import asyncio
import hashlib
import resource
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from structlog.testing import capture_logs

from relais.api.app import create_api
from relais.api.auth import (
    bearer_token,
    constant_time_equals,
    generate_token,
    hash_token,
    static_authenticator,
    token_matches,
)
from relais.api.limits import RateLimitedLog, ServerLimits
from relais.api.server import serve_api
from relais.blobs.filesystem import FilesystemBlobStore
from relais.errors import InfrastructureError

TOKEN_A = "token-of-member-a-" + "a" * 30
TOKEN_B = "token-of-member-b-" + "b" * 30
SIREN_A = "213300010"
SIREN_B = "200054807"
MAX_UPLOAD = 64 * 1024
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def auth(token: str = TOKEN_A) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload_headers(
    token: str = TOKEN_A, filename: str = "acte.pdf", media_type: str | None = "application/pdf"
) -> dict[str, str]:
    headers = {**auth(token), "X-Relais-Filename": filename}
    if media_type is not None:
        headers["Content-Type"] = media_type
    return headers


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", chunk_size=4096)


@pytest.fixture
def app(store: FilesystemBlobStore) -> Starlette:
    authenticate = static_authenticator(
        {hash_token(TOKEN_A): SIREN_A, hash_token(TOKEN_B): SIREN_B}
    )
    return create_api(store, authenticate, max_upload_bytes=MAX_UPLOAD)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relais.test") as client:
        yield client


def temp_files(store: FilesystemBlobStore) -> list[Path]:
    return sorted(store.temp_dir.glob("*")) if store.temp_dir.exists() else []


# --- auth helpers ------------------------------------------------------------------------


def test_token_helpers() -> None:
    token = generate_token()
    assert len(token) >= 43
    assert token != generate_token()
    assert hash_token(token) == sha(token.encode())
    assert token_matches(token, hash_token(token))
    assert token_matches(token, hash_token(token).upper())
    assert not token_matches(token + "x", hash_token(token))
    assert constant_time_equals("abc", "abc")
    assert not constant_time_equals("abc", "abd")
    assert bearer_token(f"Bearer {token}") == token
    assert bearer_token(f"bearer   {token} ") == token
    for header in [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {token}",
        "Bearer a b",
        "Bearer " + "x" * 600,
    ]:
        assert bearer_token(header) is None


async def test_static_authenticator_maps_tokens_to_members() -> None:
    authenticate = static_authenticator(
        {hash_token(TOKEN_A): SIREN_A, hash_token(TOKEN_B): SIREN_B}
    )
    assert await authenticate(TOKEN_A) == SIREN_A
    assert await authenticate(TOKEN_B) == SIREN_B
    assert await authenticate("unknown") is None


# --- routes ------------------------------------------------------------------------------


async def test_health_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN_A}"},
        {"Authorization": TOKEN_A},
    ],
)
async def test_upload_without_a_valid_token_is_401_and_stores_nothing(
    client: httpx.AsyncClient, store: FilesystemBlobStore, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/blobs", content=PDF, headers={**headers, "X-Relais-Filename": "a.pdf"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    # Same answer whether the token is missing or wrong.
    assert response.json() == {
        "error": "unauthorized",
        "message": "A valid bearer token is required.",
    }
    assert await store.stat(sha(PDF)) is None


async def test_upload_returns_the_ref_and_the_tokens_member(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    response = await client.post("/v1/blobs", content=PDF, headers=upload_headers())
    assert response.status_code == 201
    assert response.json() == {
        "sha256": sha(PDF),
        "size": len(PDF),
        "media_type": "application/pdf",
        "filename": "acte.pdf",
        "member": SIREN_A,
    }
    assert response.headers["location"] == f"/v1/blobs/{sha(PDF)}"
    assert await store.verify(sha(PDF))

    other = await client.post("/v1/blobs", content=PDF, headers=upload_headers(TOKEN_B))
    assert other.status_code == 201
    assert other.json()["member"] == SIREN_B


async def test_upload_streams_a_chunked_body(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    parts = [PDF[:3], PDF[3:1000], PDF[1000:]]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    response = await client.post("/v1/blobs", content=body(), headers=upload_headers())
    assert response.status_code == 201
    assert "content-length" not in response.request.headers
    assert response.json()["sha256"] == sha(PDF)
    assert await store.stat(sha(PDF)) == len(PDF)


async def test_upload_body_is_never_read_whole(store: FilesystemBlobStore) -> None:
    big = 20 * 1024 * 1024
    authenticate = static_authenticator({hash_token(TOKEN_A): SIREN_A})
    app = create_api(store, authenticate, max_upload_bytes=big)
    hasher = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for index in range(big // (256 * 1024)):
            piece = bytes([index % 256]) * (256 * 1024)
            hasher.update(piece)
            yield piece

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relais.test") as client:
        tracemalloc.start()
        try:
            response = await client.post(
                "/v1/blobs", content=body(), headers=upload_headers(media_type=None)
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 201
    assert response.json()["size"] == big
    assert response.json()["sha256"] == hasher.hexdigest()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


async def test_upload_over_the_limit_is_413(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    too_big = b"%PDF-" + b"x" * MAX_UPLOAD
    declared = await client.post("/v1/blobs", content=too_big, headers=upload_headers())
    assert declared.status_code == 413
    assert declared.json()["error"] == "blob_too_large"

    async def undeclared() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 1000):
            yield too_big[start : start + 1000]

    streamed = await client.post("/v1/blobs", content=undeclared(), headers=upload_headers())
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "blob_too_large"
    assert await store.stat(sha(too_big)) is None
    assert temp_files(store) == []

    exact = b"x" * MAX_UPLOAD
    accepted = await client.post("/v1/blobs", content=exact, headers=upload_headers())
    assert accepted.status_code == 201


async def test_digest_header_is_checked(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    wrong = await client.post(
        "/v1/blobs", content=PDF, headers={**upload_headers(), "X-Relais-Sha256": "0" * 64}
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "blob_integrity"
    assert sha(PDF) in wrong.json()["message"]
    assert await store.stat(sha(PDF)) is None
    assert temp_files(store) == []

    malformed = await client.post(
        "/v1/blobs", content=PDF, headers={**upload_headers(), "X-Relais-Sha256": "abc"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "invalid_sha256"

    right = await client.post(
        "/v1/blobs", content=PDF, headers={**upload_headers(), "X-Relais-Sha256": sha(PDF).upper()}
    )
    assert right.status_code == 201
    assert right.json()["sha256"] == sha(PDF)


@pytest.mark.parametrize(
    "filename",
    ["../etc/passwd", "a/b.pdf", "a\\b.pdf", "x" * 256, "..", "a%2Fb.pdf", "%2E%2E", "%FF.pdf", ""],
)
async def test_bad_filename_is_400(
    client: httpx.AsyncClient, store: FilesystemBlobStore, filename: str
) -> None:
    response = await client.post(
        "/v1/blobs", content=PDF, headers=upload_headers(filename=filename)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_filename"
    assert isinstance(response.json()["message"], str)
    assert await store.stat(sha(PDF)) is None


async def test_missing_filename_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/blobs", content=PDF, headers={**auth(), "Content-Type": "application/pdf"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_filename"


async def test_filename_may_be_percent_encoded_utf8(client: httpx.AsyncClient) -> None:
    encoded = "d%C3%A9lib%C3%A9ration%20n%C2%B012.pdf"
    response = await client.post("/v1/blobs", content=PDF, headers=upload_headers(filename=encoded))
    assert response.status_code == 201
    assert response.json()["filename"] == "délibération n°12.pdf"
    longest = await client.post(
        "/v1/blobs", content=PDF, headers=upload_headers(filename="x" * 255)
    )
    assert longest.status_code == 201


async def test_media_type_is_sniffed_when_not_declared(client: httpx.AsyncClient) -> None:
    undeclared = await client.post(
        "/v1/blobs", content=PDF, headers=upload_headers(media_type=None)
    )
    assert undeclared.json()["media_type"] == "application/pdf"
    generic = await client.post(
        "/v1/blobs",
        content=b'<?xml version="1.0"?><a/>',
        headers=upload_headers(filename="a.xml", media_type="application/octet-stream"),
    )
    assert generic.json()["media_type"] == "application/xml"
    unknown = await client.post(
        "/v1/blobs", content=b"plain bytes", headers=upload_headers(media_type=None)
    )
    assert unknown.json()["media_type"] == "application/octet-stream"
    declared = await client.post(
        "/v1/blobs", content=b"plain bytes", headers=upload_headers(media_type="Text/Plain")
    )
    assert declared.json()["media_type"] == "text/plain"
    bad = await client.post("/v1/blobs", content=PDF, headers=upload_headers(media_type="pdf"))
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_media_type"


async def test_empty_upload_is_400(client: httpx.AsyncClient, store: FilesystemBlobStore) -> None:
    response = await client.post("/v1/blobs", content=b"", headers=upload_headers())
    assert response.status_code == 400
    assert response.json()["error"] == "empty_body"
    assert await store.stat(sha(b"")) is None


async def test_head_reports_presence_and_size(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf", owner=SIREN_A)
    present = await client.head(f"/v1/blobs/{sha(PDF)}", headers=auth())
    assert present.status_code == 200
    assert present.headers["content-length"] == str(len(PDF))
    assert present.content == b""
    absent = await client.head(f"/v1/blobs/{'0' * 64}", headers=auth())
    assert absent.status_code == 404
    assert absent.content == b""
    anonymous = await client.head(f"/v1/blobs/{sha(PDF)}")
    assert anonymous.status_code == 401


async def test_get_streams_the_blob(client: httpx.AsyncClient, store: FilesystemBlobStore) -> None:
    data = PDF * 10  # several store chunks
    await store.put_bytes(data, media_type="application/pdf", filename="a.pdf", owner=SIREN_B)
    response = await client.get(f"/v1/blobs/{sha(data)}", headers=auth(TOKEN_B))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == f'"{sha(data)}"'

    absent = await client.get(f"/v1/blobs/{'0' * 64}", headers=auth())
    assert absent.status_code == 404
    assert absent.json()["error"] == "blob_not_found"
    malformed = await client.get("/v1/blobs/not-a-digest", headers=auth())
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "invalid_sha256"
    anonymous = await client.get(f"/v1/blobs/{sha(data)}")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"


async def test_upload_then_download_round_trip(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/blobs", content=PDF, headers=upload_headers())
    location = created.headers["location"]
    downloaded = await client.get(location, headers=auth())
    assert downloaded.content == PDF


async def test_unknown_route_and_method_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/nothing", headers=auth())
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = await client.delete(f"/v1/blobs/{sha(PDF)}", headers=auth())
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


async def test_registry_outage_is_503(store: FilesystemBlobStore) -> None:
    async def unavailable(token: str) -> str | None:
        raise InfrastructureError("member registry unreachable")

    app = create_api(store, unavailable, max_upload_bytes=MAX_UPLOAD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relais.test") as client:
        response = await client.post("/v1/blobs", content=PDF, headers=upload_headers())
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


async def test_logs_name_the_member_and_blob_but_never_the_token(
    client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        await client.post("/v1/blobs", content=PDF, headers=upload_headers())
        await client.post("/v1/blobs", content=PDF, headers=upload_headers(token="bad-token-value"))
    stored = [entry for entry in logs if entry["event"] == "api.blob_stored"]
    assert stored == [
        {
            "event": "api.blob_stored",
            "log_level": "info",
            "member": SIREN_A,
            "sha256": sha(PDF),
            "size": len(PDF),
            "media_type": "application/pdf",
        }
    ]
    assert any(entry["event"] == "api.unauthorized" for entry in logs)
    dumped = repr(logs)
    assert TOKEN_A not in dumped
    assert "bad-token-value" not in dumped
    assert hash_token(TOKEN_A) not in dumped


# --- server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_serve_api_serves_until_cancelled(app: Starlette) -> None:
    port = _free_port()
    started = asyncio.Event()
    task = asyncio.create_task(
        serve_api(app, "127.0.0.1", port, handle_signals=False, started=started)
    )
    await asyncio.wait_for(started.wait(), timeout=10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        health = await http.get("/health")
        uploaded = await http.post("/v1/blobs", content=PDF, headers=upload_headers())
        head = await http.head(f"/v1/blobs/{sha(PDF)}", headers=auth())
    assert health.json() == {"status": "ok"}
    assert uploaded.status_code == 201
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(PDF))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=15)
    # The port is free again.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


async def test_serve_api_reports_a_busy_port(app: Starlette) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InfrastructureError):
            await serve_api(app, "127.0.0.1", port, handle_signals=False)


async def test_client_disconnect_mid_upload_leaves_nothing(
    app: Starlette, store: FilesystemBlobStore
) -> None:
    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": PDF[:2000], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/blobs",
        "raw_path": b"/v1/blobs",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {TOKEN_A}".encode()),
            (b"x-relais-filename", b"a.pdf"),
            (b"content-type", b"application/pdf"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("relais.test", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 400
    assert store.temp_dir.exists()  # the upload had reached the store
    assert temp_files(store) == []
    assert list(store.root.glob("??/??/*")) == []


# --- Ownership (issue 13, F4) ----------------------------------------------------------------


async def test_a_member_owns_what_it_uploads_and_no_one_else_reads_it(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    uploaded = await client.post("/v1/blobs", content=PDF, headers=upload_headers(TOKEN_A))
    assert uploaded.status_code == 201
    digest = uploaded.json()["sha256"]
    assert await store.owned_by(digest, SIREN_A)
    assert not await store.owned_by(digest, SIREN_B)
    assert (await client.get(f"/v1/blobs/{digest}", headers=auth(TOKEN_A))).content == PDF
    for method in ("GET", "HEAD"):
        refused = await client.request(method, f"/v1/blobs/{digest}", headers=auth(TOKEN_B))
        assert refused.status_code == 403
        if method == "GET":
            assert refused.json()["error"] == "blob_not_owned"
            assert SIREN_B in refused.json()["message"]
            assert refused.content.find(PDF[:20]) == -1
    # the same bytes uploaded by B: B owns them too, A keeps its right
    again = await client.post("/v1/blobs", content=PDF, headers=upload_headers(TOKEN_B))
    assert again.json()["sha256"] == digest
    assert (await client.get(f"/v1/blobs/{digest}", headers=auth(TOKEN_B))).status_code == 200
    assert (await client.get(f"/v1/blobs/{digest}", headers=auth(TOKEN_A))).status_code == 200


async def test_partner_documents_belong_to_the_member_whose_flow_received_them(
    client: httpx.AsyncClient, store: FilesystemBlobStore
) -> None:
    letter = b"%PDF-1.4 lettre d'observations"
    ref = await store.put_bytes(letter, media_type="application/pdf", filename="lettre.pdf",
                                owner=SIREN_A)
    assert (await client.get(f"/v1/blobs/{ref.sha256}", headers=auth(TOKEN_A))).content == letter
    refused = await client.get(f"/v1/blobs/{ref.sha256}", headers=auth(TOKEN_B))
    assert (refused.status_code, refused.json()["error"]) == (403, "blob_not_owned")


# --- Forms and stalled bodies (issue 7 item 7, issue 13 F7) ---------------------------------


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded"]
)
async def test_a_form_upload_is_refused_with_a_clear_reason(
    client: httpx.AsyncClient, store: FilesystemBlobStore, content_type: str
) -> None:
    response = await client.post(
        "/v1/blobs", content=b"--xyz\r\nContent-Disposition: form-data; name=file\r\n\r\n"
        + PDF + b"\r\n--xyz--\r\n",
        headers={**upload_headers(), "Content-Type": content_type},
    )
    assert response.status_code == 415
    assert response.json()["error"] == "form_upload"
    assert "--data-binary" in response.json()["message"]
    assert temp_files(store) == [] and await store.stat(sha(PDF)) is None


async def test_curl_dash_f_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/blobs", files={"file": ("acte.pdf", PDF, "application/pdf")},
        headers={**auth(), "X-Relais-Filename": "acte.pdf"},
    )
    assert response.status_code == 415
    assert "raw bytes" in response.json()["message"]


async def test_a_stalled_body_is_answered_408(store: FilesystemBlobStore) -> None:
    authenticate = static_authenticator({hash_token(TOKEN_A): SIREN_A})
    app = create_api(store, authenticate, max_upload_bytes=MAX_UPLOAD, body_timeout=0.2)

    async def stalling() -> AsyncIterator[bytes]:
        yield PDF[:100]
        await asyncio.sleep(5)
        yield PDF[100:]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relais.test") as client:
        started = asyncio.get_running_loop().time()
        response = await client.post("/v1/blobs", content=stalling(), headers=upload_headers())
        elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 408
    assert response.json()["error"] == "body_timeout"
    assert elapsed < 2
    assert temp_files(store) == []


def test_rate_limited_log_lets_a_burst_through_then_counts_the_rest() -> None:
    limiter = RateLimitedLog(burst=3, interval=0.05)
    with capture_logs() as logs:
        for _ in range(10):
            limiter.warning("api.unauthorized", path="/v1/blobs")
        time.sleep(0.06)
        limiter.warning("api.unauthorized", path="/v1/blobs")
    events = [entry["event"] for entry in logs]
    assert events == ["api.unauthorized"] * 3 + ["api.unauthorized.suppressed",
                                                 "api.unauthorized"]
    assert logs[3]["dropped"] == 7


def test_the_connection_limit_stays_below_the_descriptor_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        limits = ServerLimits(max_total=100_000)
        assert limits.backlog() == 64
        assert limits.effective_total() == 1024 - 4 * 64 - 64
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert ServerLimits(max_total=10).effective_total() == 10
