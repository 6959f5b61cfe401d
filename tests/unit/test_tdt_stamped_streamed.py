"""The stamped acte streamed from the TdT into the blob store (``save_stamped_acte``) and
the capped chunk reader under it (``connectors.http.limits``): the bytes stored equal
the ones ``get_stamped_acte`` reads whole, they arrive in chunks, and every refusal,
cap and deadline leaves nothing in the store."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx
import pytest

from connectors.http.limits import capped_chunks
from connectors.tdt.s2low import ReplyCaps
from relais.blobs.filesystem import FilesystemBlobStore
from relais.blobs.model import BlobRef
from relais.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerRefusedError,
    PartnerReplyError,
    PartnerReplyTooLargeError,
    PartnerTimeoutError,
    PartnerTransientError,
)
from tests.unit.test_tdt_connector import Handler, connector_for, recording, s2low_tampon

CHUNK = 64 * 1024
REDIRECT = httpx.Response(302, headers={"Location": "actes_download_file.php?file=9&tampon=true"})


def big_pdf(size: int = 1_000_000) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


async def pieces(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def serving(pdf: bytes, *, chunk: int = CHUNK, headers: dict[str, str] | None = None) -> Handler:
    """S²LOW's two hops: the redirect, then the PDF as a stream of ``chunk`` bytes."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("get_tampon.php"):
            return REDIRECT
        assert request.url.path.endswith("actes_download_file.php")
        return httpx.Response(200, headers={"Content-Type": "application/pdf", **(headers or {})},
                              content=pieces(pdf, chunk))

    return handler


class Recorder:
    """A ``store`` that keeps what it read and how it came."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.calls = 0

    async def __call__(self, chunks: AsyncIterator[bytes]) -> bytes:
        self.calls += 1
        self.chunks = [bytes(c) async for c in chunks]
        return b"".join(self.chunks)


def store_of(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def put(store: FilesystemBlobStore) -> Callable[[AsyncIterator[bytes]], Awaitable[BlobRef]]:
    return partial(store.put_stream, media_type="application/pdf", filename="tampon.pdf",
                   owner="212102313")


def stored_files(store: FilesystemBlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []


async def test_the_streamed_bytes_equal_the_whole_read_and_come_in_chunks() -> None:
    pdf = big_pdf()
    whole = await connector_for(serving(pdf)).get_stamped_acte("4242")
    recorder = Recorder()
    assert await connector_for(serving(pdf)).save_stamped_acte("4242", recorder) == whole == pdf
    assert len(recorder.chunks) > 10  # handed on as it came, not gathered
    assert max(len(c) for c in recorder.chunks) <= CHUNK


async def test_tiny_chunks_are_checked_as_a_pdf_across_their_boundaries() -> None:
    pdf = big_pdf(5000)
    recorder = Recorder()
    assert await connector_for(serving(pdf, chunk=2)).save_stamped_acte("1", recorder) == pdf


async def test_into_the_blob_store_the_digest_matches(tmp_path: Path) -> None:
    pdf = big_pdf()
    seen: list[httpx.Request] = []
    store = store_of(tmp_path)
    ref = await connector_for(recording(seen, serving(pdf))).save_stamped_acte(
        "4242", put(store))
    assert isinstance(ref, BlobRef)
    assert ref.sha256 == hashlib.sha256(pdf).hexdigest() and ref.size == len(pdf)
    assert await store.owned_by(ref.sha256, "212102313")
    assert seen[0].url.params["transaction"] == "4242"
    assert seen[1].url.params["tampon"] == "true"


@pytest.mark.parametrize(
    ("first", "error"),
    [
        (httpx.Response(200, content=b"KO\nPas d'acquittement recu"), PartnerRefusedError),
        (httpx.Response(200, content=b""), PartnerRefusedError),  # no *.pdf file to stamp
        (httpx.Response(200, content="KO\nAccès refusé".encode()), PartnerAuthError),
        (httpx.Response(200, content=b"<html>no redirect</html>"), PartnerReplyError),
        (
            httpx.Response(302, headers={"Location": "https://cdn.example.test/x.pdf"}),
            PartnerReplyError,
        ),
    ],
)
async def test_refusals_are_the_whole_reads_and_store_nothing(
    first: httpx.Response, error: type[PartnerError]
) -> None:
    recorder = Recorder()
    with pytest.raises(error) as caught:
        await connector_for(s2low_tampon(first)).save_stamped_acte("4242", recorder)
    assert type(caught.value) is error
    assert recorder.calls == 0
    with pytest.raises(error):
        await connector_for(s2low_tampon(first)).get_stamped_acte("4242")


async def test_not_a_pdf_leaves_nothing_in_the_store(tmp_path: Path) -> None:
    store = store_of(tmp_path)
    with pytest.raises(PartnerReplyError, match="not a PDF"):
        await connector_for(serving(b"<html>erreur</html>" * 1000)).save_stamped_acte(
            "4242", put(store))
    assert stored_files(store) == []


@pytest.mark.parametrize("declared", [True, False])
async def test_over_the_document_cap_stops_and_stores_nothing(
    tmp_path: Path, declared: bool
) -> None:
    pdf = big_pdf(300_000)
    headers = {"Content-Length": str(len(pdf))} if declared else None
    store = store_of(tmp_path)
    connector = connector_for(serving(pdf, headers=headers),
                              caps=ReplyCaps(document=200_000))
    with pytest.raises(PartnerReplyTooLargeError):
        await connector.save_stamped_acte("4242", put(store))
    assert stored_files(store) == []


async def test_a_transient_failure_of_the_download_is_tried_again(tmp_path: Path) -> None:
    pdf = big_pdf()
    downloads = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal downloads
        if request.url.path.endswith("get_tampon.php"):
            return REDIRECT
        downloads += 1
        if downloads == 1:
            return httpx.Response(503, content=b"busy")
        return httpx.Response(200, content=pieces(pdf))

    store = store_of(tmp_path)
    ref = await connector_for(handler).save_stamped_acte("4242", put(store))
    assert downloads == 2
    assert ref.sha256 == hashlib.sha256(pdf).hexdigest()
    assert len(stored_files(store)) == 2  # the blob and its owner mark, no leftover part


async def test_a_download_failing_every_time_gives_up_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("get_tampon.php"):
            return REDIRECT
        return httpx.Response(503, content=b"busy")

    recorder = Recorder()
    with pytest.raises(PartnerTransientError):
        await connector_for(handler, redirect_read_attempts=2).save_stamped_acte("1", recorder)
    assert recorder.calls == 0


# -- the capped chunk reader ------------------------------------------------------------------


async def _response(content: AsyncIterator[bytes], headers: dict[str, str] | None = None
                    ) -> tuple[httpx.AsyncClient, httpx.Response]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, content=content)))
    response = await client.send(client.build_request("GET", "https://tdt.test/x"),
                                 stream=True)
    return client, response


async def test_capped_chunks_yields_what_came_under_the_cap() -> None:
    data = os.urandom(200_000)
    client, response = await _response(pieces(data, 10_000))
    async with contextlib.aclosing(client):
        got = [c async for c in capped_chunks(response, len(data), partner="tdt",
                                              operation="op", deadline=5)]
    assert b"".join(got) == data and len(got) == 20


async def test_capped_chunks_gives_up_after_the_deadline() -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"%PDF-"
        await asyncio.sleep(5)
        yield b"late"

    client, response = await _response(slow())
    async with contextlib.aclosing(client):
        with pytest.raises(PartnerTimeoutError):
            async for _ in capped_chunks(response, 100, partner="tdt", operation="op",
                                         deadline=0.05):
                pass


async def test_capped_chunks_does_not_count_the_callers_time() -> None:
    client, response = await _response(pieces(os.urandom(50), 10))
    got = []
    async with contextlib.aclosing(client):
        async for chunk in capped_chunks(response, 100, partner="tdt", operation="op",
                                         deadline=0.2):
            await asyncio.sleep(0.06)  # a slow disk: 5 x 0.06 s > the 0.2 s deadline
            got.append(chunk)
    assert len(got) == 5
