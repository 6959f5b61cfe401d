"""Opening a tar (or tar.gz) that came from outside, with every size counted first.

A TdT's archive is hostile input until read. :func:`read_archive` is a small,
strict tar reader that never lets the standard library expand anything it has
not counted:

- the expanded stream (every 512-byte header, GNU long-name and PAX header,
  padding and content) is produced on demand by a bounded decompressor and
  counted; a size taken from a header is checked against what is left of
  ``max_bytes`` **before** one byte of it is decompressed;
- the data of a GNU long-name (``L``/``K``) or PAX (``x``/``g``) header is at
  most ``max_header_bytes``; every header, those included, counts towards
  ``max_entries``;
- only regular files with a bare name are accepted (no directory, link,
  device, sparse file or path), each name once;
- an empty stream, an archive whose first header is all zeros (no entry), a
  bad header checksum or a stream cut short is an error, never an empty
  result;
- reading stops after ``max_seconds`` (a deadline checked between chunks).

Errors are :class:`~relais.errors.ValidationError` with one reason on the
``archive`` field whose code is one of the ``ARCHIVE_*`` constants.
:func:`read_partner_archive` runs the reader in a worker thread (so the event
loop and its heartbeats never wait) and turns these errors into the partner
errors of the tree: :class:`~relais.errors.PartnerReplyTooLargeError` for the
size limits, :class:`~relais.errors.PartnerReplyError` otherwise.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass

from relais.errors import (
    PartnerReplyError,
    PartnerReplyTooLargeError,
    Reason,
    ValidationError,
)

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_INPUT_SLICE = 64 * 1024
_OUTPUT_SLICE = 1024 * 1024

ARCHIVE_EMPTY = "archive_empty"
ARCHIVE_UNREADABLE = "archive_unreadable"
ARCHIVE_TOO_LARGE = "archive_too_large"
ARCHIVE_TOO_MANY_ENTRIES = "archive_too_many_entries"
ARCHIVE_HEADER_TOO_LARGE = "archive_header_too_large"
ARCHIVE_ENTRY_TYPE = "archive_entry_type"
ARCHIVE_ENTRY_NAME = "archive_entry_name"
ARCHIVE_DUPLICATE = "archive_duplicate"
ARCHIVE_TIMEOUT = "archive_timeout"

#: Codes that mean "bigger than allowed" (a PartnerReplyTooLargeError from a partner).
SIZE_CODES = frozenset({ARCHIVE_TOO_LARGE, ARCHIVE_TOO_MANY_ENTRIES, ARCHIVE_HEADER_TOO_LARGE})

_REGULAR = {b"0", b"\x00", b"7"}
_GNU_LONG_NAME = b"L"
_GNU_LONG_LINK = b"K"
_PAX = b"x"
_PAX_GLOBAL = b"g"
_META = {_GNU_LONG_NAME, _GNU_LONG_LINK, _PAX, _PAX_GLOBAL}
_TYPE_NAMES = {
    b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device",
    b"4": "a block device", b"5": "a directory", b"6": "a FIFO", b"S": "a sparse file",
}


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may hold. The defaults fit an @CTES message with its documents."""

    max_bytes: int = 200 * 1024 * 1024
    """Expanded bytes in all: headers, long names, PAX records, padding and contents."""
    max_entries: int = 1000
    """Tar headers in all, GNU long-name and PAX headers included."""
    max_header_bytes: int = 64 * 1024
    """Data of one GNU long-name or PAX header."""
    max_seconds: float = 60.0
    """Reading gives up after this long."""


def _refuse(code: str, message: str) -> ValidationError:
    return ValidationError(
        f"unreadable archive: {message}", reasons=[Reason("archive", code, message)]
    )


class _Expanded:
    """The archive's uncompressed bytes, decompressed on demand and counted."""

    def __init__(self, data: bytes, limits: ArchiveLimits, deadline: float) -> None:
        self._input = memoryview(data)
        self._position = 0
        self._inflater = zlib.decompressobj(31) if data[:2] == b"\x1f\x8b" else None
        self._pending = bytearray()
        self._limits = limits
        self._deadline = deadline
        self.total = 0

    def _check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise _refuse(
                ARCHIVE_TIMEOUT, f"not read within {self._limits.max_seconds:g} seconds"
            )

    def _more(self, wanted: int) -> bool:
        """Decompress at most ``wanted`` more bytes into the buffer; False at the end."""
        self._check_time()
        inflater = self._inflater
        if inflater is None:
            chunk = self._input[self._position : self._position + wanted]
            self._position += len(chunk)
            self._pending += chunk
            return len(chunk) > 0
        limit = min(wanted, _OUTPUT_SLICE)
        try:
            while True:
                if inflater.unconsumed_tail:
                    source = inflater.unconsumed_tail
                elif inflater.eof:
                    rest = inflater.unused_data + bytes(self._input[self._position :])
                    if not rest.strip(b"\x00"):
                        return False  # end of the last gzip member (zero padding tolerated)
                    self._input = memoryview(rest)
                    self._position = 0
                    inflater = self._inflater = zlib.decompressobj(31)
                    continue
                elif self._position < len(self._input):
                    source = bytes(self._input[self._position : self._position + _INPUT_SLICE])
                    self._position += len(source)
                else:
                    raise _refuse(ARCHIVE_UNREADABLE, "the compressed stream is cut short")
                out = inflater.decompress(source, limit)
                if out:
                    self._pending += out
                    return True
        except zlib.error as exc:
            raise _refuse(ARCHIVE_UNREADABLE, f"not a valid gzip stream ({exc})") from exc

    def read(self, size: int, what: str) -> bytes | None:
        """Exactly ``size`` bytes; None at a clean end of stream before the first byte."""
        if self.total + size > self._limits.max_bytes:
            raise _refuse(
                ARCHIVE_TOO_LARGE,
                f"more than {self._limits.max_bytes} bytes once uncompressed "
                f"({what} would bring it to {self.total + size})",
            )
        chunks: list[bytes] = []
        missing = size
        while missing:
            if not self._pending and not self._more(missing):
                if missing == size and size == BLOCK and what == "a header":
                    return None
                raise _refuse(ARCHIVE_UNREADABLE, f"the archive is cut short in {what}")
            take = min(missing, len(self._pending))
            chunks.append(bytes(self._pending[:take]))
            del self._pending[:take]
            missing -= take
        self.total += size
        return b"".join(chunks)


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or base-256 when the high bit is set."""
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise _refuse(ARCHIVE_UNREADABLE, "a negative size in a header")
        return value
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as exc:
        raise _refuse(ARCHIVE_UNREADABLE, f"a header field is not a number: {text!r}") from exc


def _text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _check_header(block: bytes) -> None:
    stored = _number(block[148:156])
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 0x20
    if stored not in (unsigned, signed):
        raise _refuse(ARCHIVE_UNREADABLE, "a header's checksum is wrong (not a tar archive?)")


def _pax_records(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        if data[position:].strip(b"\x00") == b"":
            break
        space = data.find(b" ", position)
        length_text = data[position:space] if space > 0 else b""
        if not length_text.isdigit():
            raise _refuse(ARCHIVE_UNREADABLE, "a malformed PAX record")
        end = position + int(length_text)
        record = data[space + 1 : end]
        if end > len(data) or end <= space or not record.endswith(b"\n") or b"=" not in record:
            raise _refuse(ARCHIVE_UNREADABLE, "a malformed PAX record")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", errors="replace")] = value.decode("utf-8", errors="replace")
        position = end
    return records


def _check_name(name: str) -> None:
    if (
        name in {"", ".", ".."}
        or "/" in name
        or "\\" in name
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in name)
    ):
        raise _refuse(ARCHIVE_ENTRY_NAME, f"{name!r} is not a bare file name")


def _padding(size: int) -> int:
    return -size % BLOCK


def read_archive(data: bytes, limits: ArchiveLimits | None = None) -> dict[str, bytes]:
    """The regular files of a tar or tar.gz, by name, in archive order, within ``limits``.

    Blocking and CPU-bound: call :func:`read_partner_archive` from async code.
    Raises ValidationError (see the module docstring) on anything else.
    """
    limits = limits or ArchiveLimits()
    if not data or not data.strip(b"\x00"):
        raise _refuse(ARCHIVE_EMPTY, "the archive is empty (no bytes, or only zeros)")
    stream = _Expanded(data, limits, time.monotonic() + limits.max_seconds)
    files: dict[str, bytes] = {}
    headers = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        block = stream.read(BLOCK, "a header")
        if block is None:
            if long_name is not None or pax:
                raise _refuse(ARCHIVE_UNREADABLE, "the archive ends after an extended header")
            break
        if block == _ZERO_BLOCK:
            break
        headers += 1
        if headers > limits.max_entries:
            raise _refuse(
                ARCHIVE_TOO_MANY_ENTRIES, f"more than {limits.max_entries} headers"
            )
        _check_header(block)
        kind = block[156:157]
        size = _number(block[124:136])
        if kind in _META:
            if size > limits.max_header_bytes:
                raise _refuse(
                    ARCHIVE_HEADER_TOO_LARGE,
                    f"an extended header of {size} bytes (at most {limits.max_header_bytes})",
                )
            payload = stream.read(size + _padding(size), "an extended header")
            assert payload is not None
            payload = payload[:size]
            if kind == _GNU_LONG_NAME:
                long_name = _text(payload)
            elif kind == _PAX:
                pax = _pax_records(payload)
            continue
        if "size" in pax:
            if not pax["size"].isdigit():
                raise _refuse(ARCHIVE_UNREADABLE, "a PAX size is not a number")
            size = int(pax["size"])
        if "path" in pax:
            name = pax["path"]
        elif long_name is not None:
            name = long_name
        else:
            name = _text(block[0:100])
            if block[257:262] == b"ustar" and (prefix := _text(block[345:500])):
                name = f"{prefix}/{name}"
        long_name, pax = None, {}
        if kind not in _REGULAR:
            what = _TYPE_NAMES.get(kind, f"of tar type {kind!r}")
            raise _refuse(ARCHIVE_ENTRY_TYPE, f"{name!r} is {what}, not a plain file")
        _check_name(name)
        if name in files:
            raise _refuse(ARCHIVE_DUPLICATE, f"{name!r} appears twice")
        content = stream.read(size, f"{name!r}")
        assert content is not None
        stream.read(_padding(size), f"{name!r}")
        files[name] = content
    if not files:
        raise _refuse(ARCHIVE_EMPTY, "the archive holds no file")
    return files


async def read_partner_archive(
    data: bytes, *, partner: str, limits: ArchiveLimits | None = None
) -> dict[str, bytes]:
    """:func:`read_archive` in a worker thread, its refusals as partner errors.

    The event loop keeps running while the archive is read; the reader stops
    itself at ``limits.max_seconds``. Raises PartnerReplyTooLargeError when a
    size limit is crossed, PartnerReplyError for any other refusal.
    """
    limits = limits or ArchiveLimits()
    try:
        return await asyncio.to_thread(read_archive, data, limits)
    except ValidationError as exc:
        codes = {reason.code for reason in exc.reasons}
        error = PartnerReplyTooLargeError if codes & SIZE_CODES else PartnerReplyError
        raise error(
            f"{partner} sent an archive that cannot be used: {exc.message}",
            partner=partner, reasons=exc.reasons,
        ) from exc
