"""The hub HTTP API: members upload documents to the blob store, then reference them.

Routes (all but ``/health`` need ``Authorization: Bearer <token>``):

``POST /v1/blobs``
    The request body is the document, streamed into the store as it arrives
    (never read whole), the raw bytes (``curl --data-binary @file``): a
    multipart form (``curl -F``) or a URL-encoded form (``curl -d``) is refused
    with 415. ``Content-Type`` is the media type (sniffed from the
    first bytes when absent or ``application/octet-stream``);
    ``X-Relais-Filename`` the file name, UTF-8, percent-encoded when not ASCII;
    optional ``X-Relais-Sha256`` the digest the client expects. Answers 201 with
    the blob reference and the authenticated member::

        {"sha256": …, "size": …, "media_type": …, "filename": …, "member": "<SIREN>"}

``HEAD /v1/blobs/{sha256}``
    200 with ``Content-Length`` when the blob is present and the member owns it.

``GET /v1/blobs/{sha256}``
    The blob's bytes, streamed, when the member owns it.

``GET /health``
    ``{"status": "ok"}``, unauthenticated.

Errors answer ``{"error": code, "message": sentence}``: 400 (bad file name,
digest, media type or empty body), 401 (missing or bad token, without saying
which), 403 ``blob_not_owned``, 404, 408 (the body stalled for ``body_timeout``
seconds), 413 (larger than ``max_upload_bytes``), 415 (a form instead of raw
bytes), 422 (digest mismatch), 503 (storage or member registry unavailable).

A blob belongs to the members that uploaded it and, for a partner document, to
the member whose flow received it: another member gets 403 ``blob_not_owned``
(the ingress refuses its references the same way). Operators read the store
directly. Log lines about refused requests are rate-limited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import unquote

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from relais.api.auth import Authenticator, bearer_token
from relais.api.limits import RateLimitedLog
from relais.blobs.model import (
    DEFAULT_MEDIA_TYPE,
    normalize_media_type,
    parse_sha256,
    validate_filename,
)
from relais.blobs.sniff import SNIFF_BYTES, sniff_media_type
from relais.blobs.store import NOT_OWNED, TOO_LARGE, BlobStore
from relais.errors import (
    BlobIntegrityError,
    BlobNotFoundError,
    BlobNotOwnedError,
    ConfigurationError,
    InfrastructureError,
    RelaisError,
    ValidationError,
)

logger = structlog.get_logger(__name__)

FILENAME_HEADER = "X-Relais-Filename"
SHA256_HEADER = "X-Relais-Sha256"
_BLOB_CACHE_CONTROL = "private, max-age=31536000, immutable"
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
DEFAULT_BODY_TIMEOUT = 30.0


class BodyTimeoutError(Exception):
    """The client stopped sending its request body."""


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
    if isinstance(exc, BlobNotOwnedError):
        return error_response(403, exc.code, exc.message)
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


async def _timed(body: AsyncIterator[bytes], seconds: float) -> AsyncGenerator[bytes, None]:
    """``body``'s chunks; BodyTimeoutError when one takes longer than ``seconds``."""
    try:
        while True:
            try:
                async with asyncio.timeout(seconds):
                    chunk = await anext(body)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise BodyTimeoutError(f"no byte of the body for {seconds:g} seconds") from exc
            yield chunk
    finally:
        await _close(body)


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
    store: BlobStore,
    authenticate: Authenticator,
    *,
    max_upload_bytes: int,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    log_limiter: RateLimitedLog | None = None,
) -> Starlette:
    """Build the hub API over a blob store.

    ``authenticate(token)`` returns the member's SIREN, or None for an unknown
    token; it may raise InfrastructureError (answered 503). Uploads larger than
    ``max_upload_bytes`` are refused with 413, before reading when the request
    declares its length, else as soon as the limit is crossed; an upload that
    sends nothing for ``body_timeout`` seconds is answered 408. Lines about
    refused requests go through ``log_limiter``.
    """
    if max_upload_bytes <= 0:
        raise ConfigurationError("The API upload limit must be a positive byte count.")
    limited = log_limiter or RateLimitedLog()

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
            limited.info("api.unauthorized", method=request.method, path=request.url.path)
            return _unauthorized()
        log = logger.bind(member=member)

        content_type = request.headers.get("content-type", "").strip()
        if content_type.split(";")[0].strip().lower() in _FORM_TYPES:
            limited.info("api.upload_refused", member=member, error="form_upload")
            return error_response(
                415, "form_upload",
                "Send the document's raw bytes as the request body (curl --data-binary "
                f"@file, with {FILENAME_HEADER} and Content-Type headers), not a form "
                "(curl -F or -d).",
            )

        try:
            filename = decode_filename_header(request.headers.get(FILENAME_HEADER))
        except ValidationError as exc:
            limited.info("api.upload_refused", member=member, error="invalid_filename")
            return error_response(400, "invalid_filename", exc.message)

        expected: str | None = None
        if (declared_digest := request.headers.get(SHA256_HEADER)) is not None:
            try:
                expected = parse_sha256(declared_digest.strip(), field=SHA256_HEADER)
            except ValidationError:
                limited.info("api.upload_refused", member=member, error="invalid_sha256")
                return error_response(
                    400, "invalid_sha256", f"The {SHA256_HEADER} header must be 64 hex digits."
                )

        if (declared_length := request.headers.get("content-length")) is not None:
            if not declared_length.strip().isdigit():
                return error_response(400, "invalid_request", "Content-Length must be a number.")
            if int(declared_length) > max_upload_bytes:
                limited.info("api.upload_refused", member=member, error=TOO_LARGE,
                             declared=int(declared_length))
                return error_response(
                    413,
                    TOO_LARGE,
                    f"The document is larger than the {max_upload_bytes} bytes allowed.",
                )

        media_type: str | None = None
        if content_type and content_type.split(";")[0].strip().lower() != DEFAULT_MEDIA_TYPE:
            try:
                media_type = normalize_media_type(content_type, field="Content-Type")
            except ValidationError as exc:
                limited.info("api.upload_refused", member=member, error="invalid_media_type")
                return error_response(400, "invalid_media_type", exc.message)

        body = _timed(request.stream(), body_timeout)
        try:
            head = await _read_head(body)
            if not head:
                limited.info("api.upload_refused", member=member, error="empty_body")
                return error_response(400, "empty_body", "The document is empty.")
            if media_type is None:
                media_type = sniff_media_type(head) or DEFAULT_MEDIA_TYPE
            ref = await store.put_stream(
                _chain(head, body),
                media_type=media_type,
                filename=filename,
                expected_sha256=expected,
                max_bytes=max_upload_bytes,
                owner=member,
            )
        except ClientDisconnect:
            limited.info("api.upload_abandoned", member=member)
            return error_response(400, "client_disconnected", "The upload was interrupted.")
        except BodyTimeoutError as exc:
            limited.info("api.upload_abandoned", member=member, error="body_timeout")
            return error_response(
                408, "body_timeout", f"The upload stalled: {exc}.",
                headers={"Connection": "close"},
            )
        except RelaisError as exc:
            limited.info("api.upload_refused", member=member, error=exc.code)
            return _relais_error_response(exc)
        finally:
            await body.aclose()

        log.info("api.blob_stored", sha256=ref.sha256, size=ref.size, media_type=ref.media_type)
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
            limited.info("api.unauthorized", method=request.method, path=request.url.path)
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
        if not await store.owned_by(sha256, member):
            if await store.stat(sha256) is None:
                return error_response(404, BlobNotFoundError.code, "No such blob.")
            limited.info("api.download_refused", member=member, sha256=sha256,
                         error=NOT_OWNED)
            return error_response(
                403, NOT_OWNED, f"The blob {sha256} does not belong to member {member}."
            )

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
        logger.info("api.blob_download", member=member, sha256=sha256, size=size)

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
        limited.warning("api.request_failed", path=request.url.path, error=exc.code)
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
        if limited.allow("api.internal_error"):
            logger.exception("api.internal_error", path=request.url.path)
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
