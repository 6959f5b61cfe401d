"""The filesystem blob store, the blob reference and media type sniffing."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import tempfile
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relais.blobs.filesystem import OWNERS_DIR_NAME, FilesystemBlobStore
from relais.blobs.model import BlobRef, normalize_media_type, parse_sha256, validate_filename
from relais.blobs.sniff import sniff_media_type
from relais.blobs.store import TOO_LARGE, BlobStore
from relais.errors import (
    BlobIntegrityError,
    BlobNotFoundError,
    ConfigurationError,
    ValidationError,
)

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
CHUNK = 64 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", chunk_size=CHUNK)


async def agen(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def read_all(store: BlobStore, digest: str) -> bytes:
    return b"".join([chunk async for chunk in store.open(digest)])


def blob_files(store: FilesystemBlobStore) -> list[Path]:
    return sorted(
        path
        for path in store.root.rglob("*")
        if path.is_file() and store.temp_dir not in path.parents
        and store.root / OWNERS_DIR_NAME not in path.parents
    )


def temp_files(store: FilesystemBlobStore) -> list[Path]:
    return sorted(store.temp_dir.glob("*")) if store.temp_dir.exists() else []


# --- BlobRef ---------------------------------------------------------------------------


def test_blob_ref_round_trips_through_its_avro_dict_form() -> None:
    ref = BlobRef(sha256=sha(PDF), size=len(PDF), media_type="application/pdf", filename="a.pdf")
    data = ref.to_dict()
    assert data == {
        "sha256": sha(PDF),
        "size": len(PDF),
        "media_type": "application/pdf",
        "filename": "a.pdf",
    }
    assert BlobRef.from_dict(data) == ref


@pytest.mark.parametrize(
    "digest",
    ["", "abc", "g" * 64, "A" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, " " + "a" * 63],
)
def test_blob_ref_refuses_a_digest_not_in_canonical_hex_form(digest: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BlobRef(sha256=digest, size=1, media_type="application/pdf", filename="a.pdf")
    assert caught.value.reasons[0].field == "sha256"


@pytest.mark.parametrize("size", [-1, True, 1.5, "3"])
def test_blob_ref_refuses_a_bad_size(size: object) -> None:
    with pytest.raises(ValidationError):
        BlobRef(sha256="a" * 64, size=size, media_type="application/pdf", filename="a.pdf")  # type: ignore[arg-type]


def test_blob_ref_from_dict_names_every_missing_field() -> None:
    with pytest.raises(ValidationError) as caught:
        BlobRef.from_dict({"sha256": "a" * 64})
    assert {reason.field for reason in caught.value.reasons} == {"size", "media_type", "filename"}
    with pytest.raises(ValidationError):
        BlobRef.from_dict(["not", "a", "mapping"])


def test_parse_sha256_lowers_case_and_refuses_paths() -> None:
    assert parse_sha256("AB" * 32) == "ab" * 32
    with pytest.raises(ValidationError):
        parse_sha256("../../etc/passwd")


@pytest.mark.parametrize(
    "name", ["", "   ", "a/b.pdf", "..\\b.pdf", "..", ".", "x" * 256, "a\x00b", "a\nb"]
)
def test_validate_filename_refuses_paths_and_oversized_names(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_filename(name)


def test_validate_filename_accepts_plain_names() -> None:
    for name in ["délibération n°12.pdf", "x" * 255, ".hidden", "a..b"]:
        assert validate_filename(name) == name


def test_normalize_media_type() -> None:
    assert (
        normalize_media_type(" Application/XML ;charset=UTF-8 ") == "application/xml; charset=UTF-8"
    )
    for bad in ["pdf", "", "application/", "a b/c"]:
        with pytest.raises(ValidationError):
            normalize_media_type(bad)


# --- sniffing ----------------------------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF, "application/pdf"),
        (b'<?xml version="1.0"?><a/>', "application/xml"),
        (b'\xef\xbb\xbf\n  <?xml version="1.0"?>', "application/xml"),
        ("\ufeff<?xml version='1.0'?>".encode("utf-16-le"), "application/xml"),
        ("\ufeff<?xml version='1.0'?>".encode("utf-16-be"), "application/xml"),
        (_zip_bytes(), "application/zip"),
        (gzip.compress(b"hello"), "application/gzip"),
        (b"", None),
        (b"hello world", None),
        (b"<html><body/></html>", None),
        (b"PDF-%", None),
    ],
)
def test_sniff_media_type(data: bytes, expected: str | None) -> None:
    assert sniff_media_type(data) == expected


# --- store -------------------------------------------------------------------------------


def test_filesystem_store_satisfies_the_protocol(store: FilesystemBlobStore) -> None:
    assert isinstance(store, BlobStore)
    with pytest.raises(ConfigurationError):
        FilesystemBlobStore(store.root, chunk_size=0)


async def test_round_trip_lays_the_blob_out_by_digest(store: FilesystemBlobStore) -> None:
    data = os.urandom(3 * CHUNK + 17)
    digest = sha(data)
    ref = await store.put_stream(
        agen(data[:10], b"", data[10 : CHUNK + 5], data[CHUNK + 5 :]),
        media_type="Application/PDF",
        filename="acte.pdf",
    )
    assert ref == BlobRef(
        sha256=digest, size=len(data), media_type="application/pdf", filename="acte.pdf"
    )
    path = store.root / digest[:2] / digest[2:4] / digest
    assert blob_files(store) == [path]
    assert path.read_bytes() == data
    assert temp_files(store) == []
    chunks = [chunk async for chunk in store.open(digest)]
    assert b"".join(chunks) == data
    assert all(len(chunk) <= CHUNK for chunk in chunks)
    assert len(chunks) == 4
    assert await store.stat(digest) == len(data)
    assert await store.exists(ref)
    assert await store.verify(digest)


async def test_put_bytes_and_empty_blob(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    assert ref.sha256 == sha(PDF)
    assert await read_all(store, ref.sha256) == PDF
    empty = await store.put_bytes(b"", media_type="text/plain", filename="empty.txt")
    assert empty.sha256 == sha(b"")
    assert empty.size == 0
    assert await read_all(store, empty.sha256) == b""


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.integers(min_value=1, max_value=33))
def test_any_chunking_yields_the_digest_of_the_whole(parts: list[bytes], chunk_size: int) -> None:
    whole = b"".join(parts)

    async def scenario(root: Path) -> tuple[BlobRef, bytes, list[bytes]]:
        store = FilesystemBlobStore(root, chunk_size=chunk_size)
        ref = await store.put_stream(agen(*parts), media_type="text/plain", filename="t.txt")
        chunks = [chunk async for chunk in store.open(ref.sha256)]
        return ref, b"".join(chunks), chunks

    with tempfile.TemporaryDirectory() as root:
        ref, read_back, chunks = asyncio.run(scenario(Path(root)))
    assert ref.sha256 == sha(whole)
    assert ref.size == len(whole)
    assert read_back == whole
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)


async def test_put_is_idempotent(store: FilesystemBlobStore) -> None:
    first = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    second = await store.put_stream(
        agen(PDF[:5], PDF[5:]), media_type="application/pdf", filename="a.pdf"
    )
    assert first == second
    renamed = await store.put_bytes(PDF, media_type="application/pdf", filename="b.pdf")
    assert renamed.sha256 == first.sha256
    assert renamed.filename == "b.pdf"
    assert len(blob_files(store)) == 1
    assert temp_files(store) == []
    assert await read_all(store, first.sha256) == PDF


async def test_digest_mismatch_raises_and_leaves_nothing(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobIntegrityError):
        await store.put_bytes(
            PDF, media_type="application/pdf", filename="a.pdf", expected_sha256="0" * 64
        )
    assert blob_files(store) == []
    assert temp_files(store) == []
    assert await store.stat(sha(PDF)) is None


async def test_expected_digest_is_accepted_in_any_case(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(
        PDF, media_type="application/pdf", filename="a.pdf", expected_sha256=sha(PDF).upper()
    )
    assert ref.sha256 == sha(PDF)
    with pytest.raises(ValidationError):
        await store.put_bytes(
            PDF, media_type="application/pdf", filename="a.pdf", expected_sha256="x"
        )


async def test_max_bytes_refusal_stops_reading_and_leaves_no_temp_file(
    store: FilesystemBlobStore,
) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1000

    with pytest.raises(ValidationError) as caught:
        await store.put_stream(
            endless(), media_type="text/plain", filename="big.txt", max_bytes=10_500
        )
    assert caught.value.reasons[0].code == TOO_LARGE
    assert pulled == 11
    assert temp_files(store) == []
    assert blob_files(store) == []


async def test_max_bytes_is_inclusive(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(
        b"x" * 100, media_type="text/plain", filename="t.txt", max_bytes=100
    )
    assert ref.size == 100
    with pytest.raises(ValidationError):
        await store.put_bytes(b"x" * 101, media_type="text/plain", filename="t.txt", max_bytes=100)


async def test_failing_source_leaves_no_temp_file(store: FilesystemBlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * (CHUNK * 2)
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        await store.put_stream(broken(), media_type="text/plain", filename="t.txt")
    assert temp_files(store) == []
    assert blob_files(store) == []


async def test_cancelled_put_leaves_no_temp_file(store: FilesystemBlobStore) -> None:
    gate = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"a" * (CHUNK * 2)
        gate.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(
        store.put_stream(stalled(), media_type="text/plain", filename="t.txt")
    )
    await gate.wait()
    assert len(temp_files(store)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert temp_files(store) == []
    assert blob_files(store) == []


async def test_invalid_metadata_is_refused_before_reading(store: FilesystemBlobStore) -> None:
    with pytest.raises(ValidationError):
        await store.put_bytes(PDF, media_type="application/pdf", filename="../a.pdf")
    with pytest.raises(ValidationError):
        await store.put_bytes(PDF, media_type="pdf", filename="a.pdf")
    assert not store.root.exists()


async def test_streaming_put_holds_only_a_few_chunks(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")  # 1 MiB chunks
    total_chunks = 20
    chunk_size = 1024 * 1024
    hasher = hashlib.sha256()

    async def twenty_megabytes() -> AsyncIterator[bytes]:
        for index in range(total_chunks):
            # Network-sized pieces, as a server would hand them over.
            block = bytes([index]) * chunk_size
            hasher.update(block)
            for start in range(0, chunk_size, 64 * 1024):
                yield block[start : start + 64 * 1024]
            del block

    tracemalloc.start()
    try:
        ref = await store.put_stream(
            twenty_megabytes(), media_type="application/octet-stream", filename="big.bin"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ref.size == total_chunks * chunk_size
    assert ref.sha256 == hasher.hexdigest()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"

    tracemalloc.start()
    try:
        read = 0
        async for chunk in store.open(ref.sha256):
            read += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == ref.size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


async def test_exists_requires_the_exact_size(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    assert await store.exists(ref)
    wrong = BlobRef(
        sha256=ref.sha256, size=ref.size + 1, media_type=ref.media_type, filename="a.pdf"
    )
    assert not await store.exists(wrong)
    absent = BlobRef(sha256="0" * 64, size=ref.size, media_type=ref.media_type, filename="a.pdf")
    assert not await store.exists(absent)
    assert await store.stat("0" * 64) is None


async def test_verify_detects_tampering(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    assert await store.verify(ref.sha256)
    path = store.path_for(ref.sha256)
    path.chmod(0o600)
    with path.open("r+b") as handle:
        handle.seek(100)
        original = handle.read(1)
        handle.seek(100)
        handle.write(bytes([original[0] ^ 0xFF]))
    assert await store.stat(ref.sha256) == ref.size
    assert not await store.verify(ref.sha256)
    # Storing the same content again replaces the damaged copy.
    await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    assert await store.verify(ref.sha256)


async def test_missing_blob(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        await read_all(store, "1" * 64)
    with pytest.raises(BlobNotFoundError):
        await store.verify("1" * 64)
    with pytest.raises(ValidationError):
        await store.stat("../../etc/passwd")
    with pytest.raises(ValidationError):
        await read_all(store, "tmp")


async def test_delete(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    assert await store.delete(ref.sha256)
    assert await store.stat(ref.sha256) is None
    assert not await store.delete(ref.sha256)
    assert blob_files(store) == []


async def test_blobs_are_read_only_on_disk(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    assert store.path_for(ref.sha256).stat().st_mode & 0o222 == 0


async def test_purge_temp_removes_only_old_leftovers(store: FilesystemBlobStore) -> None:
    store.temp_dir.mkdir(parents=True)
    old = store.temp_dir / "put-old.part"
    fresh = store.temp_dir / "put-fresh.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1_000_000, 1_000_000))
    assert await store.purge_temp(older_than=3600) == 1
    assert not old.exists()
    assert fresh.exists()


# --- Owners (issue 13, F4) -------------------------------------------------------------------


async def test_the_uploader_owns_the_blob_and_others_do_not(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf",
                                owner="213300010")
    assert await store.owned_by(ref.sha256, "213300010")
    assert not await store.owned_by(ref.sha256, "200054807")
    anonymous = await store.put_bytes(b"other", media_type="text/plain", filename="o.txt")
    assert not await store.owned_by(anonymous.sha256, "213300010")
    await store.grant(anonymous.sha256, "200054807")
    await store.grant(anonymous.sha256, "200054807")  # idempotent
    assert await store.owned_by(anonymous.sha256, "200054807")
    # the same bytes stored for a second member: both own them, one copy is kept
    again = await store.put_bytes(PDF, media_type="application/pdf", filename="b.pdf",
                                  owner="200054807")
    assert again.sha256 == ref.sha256
    assert await store.owned_by(ref.sha256, "213300010")
    assert await store.owned_by(ref.sha256, "200054807")
    assert len(blob_files(store)) == 2


async def test_owners_cannot_be_used_as_paths(store: FilesystemBlobStore) -> None:
    ref = await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf")
    for bad in ("../x", "", "a/b", ".", "x" * 65, "é"):
        with pytest.raises(ValidationError):
            await store.grant(ref.sha256, bad)
        with pytest.raises(ValidationError):
            await store.owned_by(ref.sha256, bad)
    with pytest.raises(ValidationError):
        await store.put_bytes(b"new", media_type="text/plain", filename="n.txt", owner="../x")
    assert await store.stat(hashlib.sha256(b"new").hexdigest()) is None


async def test_a_failed_upload_grants_nothing(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobIntegrityError):
        await store.put_bytes(PDF, media_type="application/pdf", filename="a.pdf",
                              expected_sha256="0" * 64, owner="213300010")
    assert not await store.owned_by(hashlib.sha256(PDF).hexdigest(), "213300010")
