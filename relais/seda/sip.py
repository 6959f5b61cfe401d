"""A SIP (Submission Information Package) zip written as a stream.

The archive receives ``manifest.xml`` then every file under ``content/``, stored (no
compression: the documents are PDFs, already compressed, and stored entries let the whole
length be known in advance). Each file's CRC-32 and size come from the pass that
computes its SHA-512 for the manifest (:func:`digest_stream`), so local headers carry
them and no data descriptor is needed: :func:`sip_length` gives the exact
``Content-Length`` and :func:`write_sip` yields the bytes chunk by chunk, never
holding a file whole. Zip64 (APPNOTE 6.3, §4.3.9 and §4.5.3) is used for an entry
or an offset past 4 GiB - 1 and for more than 65 534 entries, or everywhere with
``force_zip64`` (tests). Names are UTF-8 (general purpose flag bit 11).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

_LOCAL = 0x04034B50
_CENTRAL = 0x02014B50
_END = 0x06054B50
_END64 = 0x06064B50
_LOCATOR64 = 0x07064B50
_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_UTF8 = 0x0800
_DOS_DATE = (2026 - 1980) << 9 | 1 << 5 | 1  # 2026-01-01: entries carry no real time
_DOS_TIME = 0


@dataclass(frozen=True)
class SipEntry:
    """One file of the zip: its name, size, CRC-32 and how to read it again."""

    name: str
    size: int
    crc32: int
    open: Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class StreamDigest:
    sha512: str
    crc32: int
    size: int
    head: bytes


async def digest_stream(chunks: AsyncIterator[bytes], head_bytes: int = 64) -> StreamDigest:
    """SHA-512, CRC-32, size and first bytes of a stream, read once, chunk by chunk."""
    sha = hashlib.sha512()
    crc = 0
    size = 0
    head = b""
    async for chunk in chunks:
        sha.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        if len(head) < head_bytes:
            head += chunk[: head_bytes - len(head)]
    return StreamDigest(sha.hexdigest(), crc, size, head)


def _zip64_entry(entry: SipEntry, force: bool) -> bool:
    return force or entry.size >= _MAX32


def _local_header(entry: SipEntry, zip64: bool) -> bytes:
    name = entry.name.encode("utf-8")
    extra = struct.pack("<HHQQ", 0x0001, 16, entry.size, entry.size) if zip64 else b""
    size32 = _MAX32 if zip64 else entry.size
    return struct.pack(
        "<IHHHHHIIIHH", _LOCAL, 45 if zip64 else 20, _UTF8, 0, _DOS_TIME, _DOS_DATE,
        entry.crc32, size32, size32, len(name), len(extra),
    ) + name + extra


def _central_header(entry: SipEntry, offset: int, zip64: bool, force: bool) -> bytes:
    name = entry.name.encode("utf-8")
    fields: list[int] = []
    big_size = zip64
    big_offset = force or offset >= _MAX32
    if big_size:
        fields += [entry.size, entry.size]
    if big_offset:
        fields.append(offset)
    extra = (struct.pack("<HH", 0x0001, 8 * len(fields)) + struct.pack(f"<{len(fields)}Q", *fields)
             if fields else b"")
    size32 = _MAX32 if big_size else entry.size
    needed = 45 if fields else 20
    return struct.pack(
        "<IHHHHHHIIIHHHHHII", _CENTRAL, 45, needed, _UTF8, 0, _DOS_TIME, _DOS_DATE,
        entry.crc32, size32, size32, len(name), len(extra), 0, 0, 0, 0,
        _MAX32 if big_offset else offset,
    ) + name + extra


def _end_records(count: int, cd_offset: int, cd_size: int, force: bool) -> bytes:
    zip64 = force or count >= _MAX16 or cd_offset >= _MAX32 or cd_size >= _MAX32
    out = b""
    if zip64:
        end64_offset = cd_offset + cd_size
        out += struct.pack("<IQHHIIQQQQ", _END64, 44, 45, 45, 0, 0, count, count,
                           cd_size, cd_offset)
        out += struct.pack("<IIQI", _LOCATOR64, 0, end64_offset, 1)
    out += struct.pack(
        "<IHHHHIIH", _END, 0, 0, min(count, _MAX16) if not zip64 else _MAX16,
        min(count, _MAX16) if not zip64 else _MAX16,
        _MAX32 if zip64 else cd_size, _MAX32 if zip64 else cd_offset, 0,
    )
    return out


def _layout(entries: list[SipEntry], force: bool) -> tuple[list[int], int, bytes]:
    """Each entry's local header offset, the central directory's offset, and the
    central directory followed by the end records."""
    offsets = []
    position = 0
    for entry in entries:
        offsets.append(position)
        position += len(_local_header(entry, _zip64_entry(entry, force))) + entry.size
    central = b"".join(_central_header(entry, offset, _zip64_entry(entry, force), force)
                       for entry, offset in zip(entries, offsets, strict=True))
    return offsets, position, central + _end_records(len(entries), position, len(central), force)


def sip_length(entries: list[SipEntry], *, force_zip64: bool = False) -> int:
    """The exact byte length of the zip :func:`write_sip` writes."""
    _, cd_offset, tail = _layout(entries, force_zip64)
    return cd_offset + len(tail)


class SipContentChangedError(Exception):
    """A file read for the zip differs in size from the pass that digested it."""


async def write_sip(entries: list[SipEntry], *,
                    force_zip64: bool = False) -> AsyncIterator[bytes]:
    """The zip's bytes, chunk by chunk (each file's chunks as its source yields them).

    Raises :class:`SipContentChangedError` when a file's size differs from ``entry.size``
    (a content-addressed blob never changes, so this is corruption, not a race).
    """
    _, _, tail = _layout(entries, force_zip64)
    for entry in entries:
        yield _local_header(entry, _zip64_entry(entry, force_zip64))
        written = 0
        crc = 0
        stream = entry.open()
        try:
            async for chunk in stream:
                written += len(chunk)
                crc = zlib.crc32(chunk, crc)
                if written > entry.size:
                    break
                yield chunk
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
        if written != entry.size or crc != entry.crc32:
            raise SipContentChangedError(
                f"{entry.name}: {written} bytes read with CRC {crc:08x}, "
                f"expected {entry.size} with {entry.crc32:08x}")
    yield tail


def bytes_entry(name: str, data: bytes) -> SipEntry:
    """An entry from bytes in memory (the manifest)."""

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return SipEntry(name, len(data), zlib.crc32(data), chunks)
