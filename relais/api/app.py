"""The hub HTTP API: members upload documents to the blob store, then reference them.

Routes (all but ``/health`` need ``Authorization: Bearer <token>``):

``POST /v1/blobs``
    The request body is the document, streamed into the store as it arrives
    (never read whole). ``Content-Type`` is the media type (sniffed from the
    first bytes when absent or ``application/octet-stream``);
    ``X-Relais-Filename`` the file name, UTF-8, percent-encoded when not ASCII;
    optional ``X-Relais-Sha256`` the digest the client expects. Answers 201 with
    the blob reference and the authenticated member::

        {"sha256": …, "size": …, "media_type": …, "filename": …, "member": "<SIREN>"}

``HEAD /v1/blobs/{sha256}``
    200 with ``Content-Length`` when the blob is present, else 404.

``GET /v1/blobs/{sha256}``
    The blob's bytes, streamed.

``GET /health``
    ``{"status": "ok"}``, unauthenticated.

Errors answer ``{"error": code, "message": sentence}``: 400 (bad file name,
digest, media type or empty body), 401 (missing or bad token, without saying
which), 404, 413 (larger than ``max_upload_bytes``), 422 (digest mismatch),
503 (storage or member registry unavailable).

Any authenticated member may read any blob whose digest it knows; which
member may reference which blob is checked where records are validated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from relais.api.auth import Authenticator, bearer_token
from relais.blobs.model import (
    DEFAULT_MEDIA_TYPE,
    normalize_media_type,
    parse_sha256,
    validate_filename,
)
from relais.blobs.sniff import SNIFF_BYTES, sniff_media_type
from relais.blobs.store import TOO_LARGE, BlobStore
from relais.errors import (
    BlobIntegrityError,
    BlobNotFoundError,
    ConfigurationError,
    InfrastructureError,
    RelaisError,
    ValidationError,
)

logger = structlog.get_logger(__name__)

FILENAME_HEADER = "X-Relais-Filename"
SHA256_HEADER = "X-Relais-Sha256"
_BLOB_CACHE_CONTROL = "private, max-age=31536000, immutable"


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error body every route answers with: ``{"error": code, "message": ...}``."""
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _unauthorized() -> JSONResponse:
    return error_response(
        401,
        "unauthorized",
        "A valid bearer token is required.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _relais_error_response(exc: RelaisError) -> JSONResponse:
    if isinstance(exc, ValidationError):
        if any(reason.code == TOO_LARGE for reason in exc.reasons):
            return error_response(413, TOO_LARGE, exc.message)
        return error_response(400, exc.code, exc.message)
    if isinstance(exc, BlobIntegrityError):
        return error_response(422, exc.code, exc.message)
    if isinstance(exc, BlobNotFoundError):
        return error_response(404, exc.code, exc.message)
    if isinstance(exc, InfrastructureError):
        return error_response(503, "unavailable", "The service is unavailable; retry later.")
    return error_response(500, "internal_error", "The request failed on the server.")


def _headers_only(response: Response) -> Response:
    """A HEAD answer to an error: its status and headers, without the JSON body."""
    headers = {
        key: value for key, value in response.headers.items() if key.lower() != "content-length"
    }
    return Response(status_code=response.status_code, headers=headers)


def decode_filename_header(value: str | None) -> str:
    """The file name carried by ``X-Relais-Filename``, decoded and validated.

    The header holds UTF-8, percent-encoded or not; the decoded name must be a
    plain file name (see :func:`relais.blobs.model.validate_filename`).
    Raises ValidationError otherwise, or when the header is missing.
    """
    if value is None:
        raise ValidationError(f"The {FILENAME_HEADER} header is required.")
    try:
        # Starlette decodes header bytes as Latin-1; recover them, then read UTF-8.
        text = unquote(value.encode("latin-1").decode("utf-8"), errors="strict")
    except UnicodeError as exc:
        raise ValidationError(
            f"The {FILENAME_HEADER} header must hold UTF-8, percent-encoded."
        ) from exc
    return validate_filename(text, field=FILENAME_HEADER)


async def _read_head(body: AsyncIterator[bytes]) -> bytes:
    """Read at least :data:`SNIFF_BYTES` (or everything, if shorter) from the body."""
    head = bytearray()
    async for chunk in body:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    return bytes(head)


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in rest:
        yield chunk


async def _close(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def create_api(
    store: BlobStore, authenticate: Authenticator, *, max_upload_bytes: int
) -> Starlette:
    """Build the hub API over a blob store.

    ``authenticate(token)`` returns the member's SIREN, or None for an unknown
    token; it may raise InfrastructureError (answered 503). Uploads larger than
    ``max_upload_bytes`` are refused with 413, before reading when the request
    declares its length, else as soon as the limit is crossed.
    """
    if max_upload_bytes <= 0:
        raise ConfigurationError("The API upload limit must be a positive byte count.")

    async def member_of(request: Request) -> str | None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return None
        return await authenticate(token)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def upload(request: Request) -> Response:
        member = await member_of(request)
        if member is None:
            logger.info("api_unauthorized", method=request.method, path=request.url.path)
            return _unauthorized()
        log = logger.bind(member=member)

        try:
            filename = decode_filename_header(request.headers.get(FILENAME_HEADER))
        except ValidationError as exc:
            log.info("blob_upload_refused", error="invalid_filename")
            return error_response(400, "invalid_filename", exc.message)

        expected: str | None = None
        if (declared_digest := request.headers.get(SHA256_HEADER)) is not None:
            try:
                expected = parse_sha256(declared_digest.strip(), field=SHA256_HEADER)
            except ValidationError:
                log.info("blob_upload_refused", error="invalid_sha256")
                return error_response(
                    400, "invalid_sha256", f"The {SHA256_HEADER} header must be 64 hex digits."
                )

        if (declared_length := request.headers.get("content-length")) is not None:
            if not declared_length.strip().isdigit():
                return error_response(400, "invalid_request", "Content-Length must be a number.")
            if int(declared_length) > max_upload_bytes:
                log.info("blob_upload_refused", error=TOO_LARGE, declared=int(declared_length))
                return error_response(
                    413,
                    TOO_LARGE,
                    f"The document is larger than the {max_upload_bytes} bytes allowed.",
                )

        media_type: str | None = None
        content_type = request.headers.get("content-type", "").strip()
        if content_type and content_type.split(";")[0].strip().lower() != DEFAULT_MEDIA_TYPE:
            try:
                media_type = normalize_media_type(content_type, field="Content-Type")
            except ValidationError as exc:
                log.info("blob_upload_refused", error="invalid_media_type")
                return error_response(400, "invalid_media_type", exc.message)

        body = request.stream()
        try:
            head = await _read_head(body)
            if not head:
                log.info("blob_upload_refused", error="empty_body")
                return error_response(400, "empty_body", "The document is empty.")
            if media_type is None:
                media_type = sniff_media_type(head) or DEFAULT_MEDIA_TYPE
            ref = await store.put_stream(
                _chain(head, body),
                media_type=media_type,
                filename=filename,
                expected_sha256=expected,
                max_bytes=max_upload_bytes,
            )
        except ClientDisconnect:
            log.info("blob_upload_abandoned")
            return error_response(400, "client_disconnected", "The upload was interrupted.")
        except RelaisError as exc:
            log.info("blob_upload_refused", error=exc.code)
            return _relais_error_response(exc)
        finally:
            await body.aclose()

        log.info("blob_stored", sha256=ref.sha256, size=ref.size, media_type=ref.media_type)
        return JSONResponse(
            {**ref.to_dict(), "member": member},
            status_code=201,
            headers={"Location": f"/v1/blobs/{ref.sha256}"},
        )

    async def blob(request: Request) -> Response:
        response = await _blob(request)
        if request.method == "HEAD" and response.status_code >= 400:
            return _headers_only(response)
        return response

    async def _blob(request: Request) -> Response:
        member = await member_of(request)
        if member is None:
            logger.info("api_unauthorized", method=request.method, path=request.url.path)
            return _unauthorized()
        try:
            sha256 = parse_sha256(request.path_params["sha256"])
        except ValidationError:
            return error_response(400, "invalid_sha256", "A blob digest must be 64 hex digits.")
        headers = {
            "ETag": f'"{sha256}"',
            "Cache-Control": _BLOB_CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
        }

        if request.method == "HEAD":
            size = await store.stat(sha256)
            if size is None:
                return error_response(404, BlobNotFoundError.code, "No such blob.")
            headers["Content-Length"] = str(size)
            return Response(status_code=200, headers=headers, media_type=DEFAULT_MEDIA_TYPE)

        chunks = store.open(sha256)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except BlobNotFoundError:
            return error_response(404, BlobNotFoundError.code, "No such blob.")
        size = await store.stat(sha256)
        if size is not None:
            headers["Content-Length"] = str(size)
        logger.info("blob_download", member=member, sha256=sha256, size=size)

        async def content() -> AsyncIterator[bytes]:
            try:
                if first:
                    yield first
                async for chunk in chunks:
                    yield chunk
            finally:
                await _close(chunks)

        return StreamingResponse(content(), headers=headers, media_type=DEFAULT_MEDIA_TYPE)

    async def on_relais_error(request: Request, exc: RelaisError) -> Response:
        logger.warning("api_request_failed", path=request.url.path, error=exc.code)
        response = _relais_error_response(exc)
        return _headers_only(response) if request.method == "HEAD" else response

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        messages = {404: "No such resource.", 405: "This method is not allowed here."}
        response = error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            messages.get(exc.status_code, "The request cannot be served."),
            headers=dict(exc.headers or {}),
        )
        return _headers_only(response) if request.method == "HEAD" else response

    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        logger.exception("api_internal_error", path=request.url.path)
        return error_response(500, "internal_error", "The request failed on the server.")

    handlers: dict[Any, Any] = {
        RelaisError: on_relais_error,
        HTTPException: on_http_error,
        Exception: on_unexpected_error,
    }
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/blobs", upload, methods=["POST"]),
            Route("/v1/blobs/{sha256}", blob, methods=["GET", "HEAD"]),
        ],
        exception_handlers=handlers,
    )


__all__ = [
    "FILENAME_HEADER",
    "SHA256_HEADER",
    "create_api",
    "decode_filename_header",
    "error_response",
]
