"""The streaming SIP zip: read back by zipfile and unzip-compatible, zip64 when forced,
exact length in advance, and a file whose content changed between passes refused."""

from __future__ import annotations

import asyncio
import io
import zipfile
import zlib
from collections.abc import AsyncIterator

import pytest

from relais.seda.formats import extension, identify
from relais.seda.sip import (
    SipContentChangedError,
    SipEntry,
    bytes_entry,
    digest_stream,
    sip_length,
    write_sip,
)


def _collect(entries: list[SipEntry], force: bool = False) -> bytes:
    async def run() -> bytes:
        return b"".join([c async for c in write_sip(entries, force_zip64=force)])

    return asyncio.run(run())


@pytest.mark.parametrize("force", [False, True])
def test_zip_read_back(force: bool) -> None:
    files = {"manifest.xml": b"<m/>", "content/ID1.pdf": bytes(range(256)) * 400,
             "content/vide.txt": b"", "content/é.txt": "é".encode()}
    entries = [bytes_entry(n, d) for n, d in files.items()]
    data = _collect(entries, force)
    assert len(data) == sip_length(entries, force_zip64=force)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert {n: archive.read(n) for n in archive.namelist()} == files
    if force:
        assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # zip64 end records
    else:
        assert b"PK\x06\x06" not in data


def test_a_file_that_changed_size_is_refused() -> None:
    async def longer() -> AsyncIterator[bytes]:
        yield b"abcdef"

    entry = SipEntry("content/ID1.bin", 3, zlib.crc32(b"abc"), longer)
    with pytest.raises(SipContentChangedError):
        _collect([entry])


def test_digest_stream_reads_once() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"%PDF-1.4\n"
        yield b"rest"

    digest = asyncio.run(digest_stream(chunks()))
    assert digest.size == 13 and digest.head.startswith(b"%PDF-1.4")
    assert digest.crc32 == zlib.crc32(b"%PDF-1.4\nrest")
    assert identify("application/pdf", digest.head) == (
        "fmt/18", "Acrobat PDF 1.4 - Portable Document Format")
    assert identify("application/octet-stream", b"\x00") == (None, None)
    assert extension("délib.PDF", "application/pdf") == "pdf"
    assert extension("sans-extension", "text/xml") == "xml"
