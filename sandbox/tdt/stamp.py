"""The préfecture stamp S²LOW puts on an acknowledged acte (``ActeTamponne``), imitated.

S²LOW stamps the acte's first page with the dates of sending and receipt and the IDActe
(``class/actes/ActeTamponne.php``, ``PDFStampWrapper``); when stamping fails it serves the
PDF unchanged. The sandbox appends a PDF *incremental update* to a copy of the acte: a new
last page showing the stamp lines (drawn like :func:`relais.documents.sample_pdf` draws its
text), a new page tree holding the old one and that page, and a new catalogue. The original
bytes stay untouched at the start of the file. A PDF whose trailer it cannot read (e.g. a
cross-reference stream without a classic trailer) is returned unchanged, as S²LOW does.

:func:`stamp_file_increment` makes the same increment from a PDF on disk, reading it in
chunks (the sandbox keeps a 150 MB acte in a file, never in memory).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

_STARTXREF_RE = re.compile(rb"startxref\s+([0-9]+)\s+%%EOF\s*$")
_TRAILER_RE = re.compile(rb"trailer\s*<<(.*?)>>\s*startxref", re.S)
_SIZE_RE = re.compile(rb"/Size\s+([0-9]+)")
_ROOT_RE = re.compile(rb"/Root\s+([0-9]+)\s+([0-9]+)\s+R")
_PAGES_RE = re.compile(rb"/Pages\s+([0-9]+)\s+([0-9]+)\s+R")


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in "()\\" else " " for c in text)


def _object_re(number: int, generation: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![0-9])%d %d obj(.*?)endobj" % (number, generation), re.S)


class _Pdf(Protocol):
    """What the stamp reads of a PDF."""

    size: int

    def tail(self, size: int) -> bytes: ...

    def last_trailer(self) -> bytes | None: ...

    def object_body(self, number: int, generation: int) -> bytes | None: ...


class _PdfBytes:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def tail(self, size: int) -> bytes:
        return self._data[-size:]

    def last_trailer(self) -> bytes | None:
        found = list(_TRAILER_RE.finditer(self._data))
        return found[-1].group(1) if found else None

    def object_body(self, number: int, generation: int) -> bytes | None:
        """The body of the last definition of object ``number generation``."""
        found = list(_object_re(number, generation).finditer(self._data))
        return found[-1].group(1) if found else None


_CHUNK = 1024 * 1024
_OVERLAP = 256
_MAX_OBJECT = 1024 * 1024
"""Longest trailer or catalogue/page-tree object read from a file (they are dictionaries of
a few hundred bytes; a longer one is not stamped)."""


class _PdfFile:
    """The same reads on a file, in chunks: the last *start* of a match is found scanning
    the file (windows overlapping by :data:`_OVERLAP` bytes), then the match is read from
    there, at most :data:`_MAX_OBJECT` bytes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.size = path.stat().st_size

    def _read(self, offset: int, size: int) -> bytes:
        with self._path.open("rb") as source:
            source.seek(max(offset, 0))
            return source.read(size)

    def tail(self, size: int) -> bytes:
        return self._read(self.size - size, size)

    def _last_start(self, start: re.Pattern[bytes]) -> int | None:
        last = None
        with self._path.open("rb") as source:
            offset, carry = 0, b""
            while block := source.read(_CHUNK):
                window = carry + block
                base = offset - len(carry)
                for found in start.finditer(window):
                    last = base + found.start()
                offset += len(block)
                carry = window[-_OVERLAP:]
        return last

    def _last(self, start: re.Pattern[bytes], whole: re.Pattern[bytes]) -> bytes | None:
        at = self._last_start(start)
        if at is None:
            return None
        found = whole.match(self._read(at, _MAX_OBJECT))
        return found.group(1) if found else None

    def last_trailer(self) -> bytes | None:
        return self._last(re.compile(rb"trailer\s*<<"), _TRAILER_RE)

    def object_body(self, number: int, generation: int) -> bytes | None:
        return self._last(re.compile(rb"(?<![0-9])%d %d obj" % (number, generation)),
                          _object_re(number, generation))


def stamp_pdf(pdf: bytes, lines: Sequence[str]) -> bytes:
    """A copy of ``pdf`` with a last page showing ``lines``; ``pdf`` itself when unreadable."""
    return pdf + stamp_increment(pdf, lines)


def stamp_increment(pdf: bytes, lines: Sequence[str]) -> bytes:
    """What :func:`stamp_pdf` appends to ``pdf`` (empty when it cannot read ``pdf``): a
    large acte can be served as its own bytes followed by these, never copied whole."""
    return _increment(_PdfBytes(pdf), lines)


def stamp_file_increment(path: Path, lines: Sequence[str]) -> bytes:
    """:func:`stamp_increment` of the PDF in ``path``, read in chunks (blocking: the whole
    file is scanned a few times; run it in a thread)."""
    return _increment(_PdfFile(path), lines)


def _increment(pdf: _Pdf, lines: Sequence[str]) -> bytes:
    tail = pdf.tail(2048)
    startxref = _STARTXREF_RE.search(tail)
    trailer = pdf.last_trailer() if startxref is not None else None
    if startxref is None or trailer is None:
        return b""
    size = _SIZE_RE.search(trailer)
    root = _ROOT_RE.search(trailer)
    if size is None or root is None:
        return b""
    catalog = pdf.object_body(int(root[1]), int(root[2]))
    pages = _PAGES_RE.search(catalog) if catalog else None
    if catalog is None or pages is None:
        return b""
    first = int(size[1])
    new_pages, new_page, content, font, new_catalog = range(first, first + 5)
    text = " ".join(
        f"BT /F1 11 Tf 72 {780 - 18 * n} Td ({_ascii(line)}) Tj ET" for n, line in enumerate(lines)
    )
    stream = f"q 0.8 0 0 RG 2 w 60 {760 - 18 * len(lines)} 470 {36 + 18 * len(lines)} re S Q {text}"
    stream_bytes = stream.encode("ascii")
    old_catalog = catalog.strip()
    if old_catalog.startswith(b"<<") and old_catalog.endswith(b">>"):
        catalog_body = _PAGES_RE.sub(b"/Pages %d 0 R" % new_pages, old_catalog)
    else:
        return b""
    objects = {
        new_pages: b"<< /Type /Pages /Kids [%s %s 0 R] /Count %d >>"
        % (pages[1] + b" " + pages[2] + b" R", str(new_page).encode(), _count(pdf, pages) + 1),
        new_page: b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (new_pages, font, content),
        content: b"<< /Length %d >>\nstream\n" % len(stream_bytes) + stream_bytes + b"\nendstream",
        font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        new_catalog: catalog_body,
    }
    out = bytearray(b"" if tail.endswith(b"\n") else b"\n")
    start = pdf.size  # offsets count the original bytes, not copied here
    offsets: dict[int, int] = {}
    for number, body in objects.items():
        offsets[number] = start + len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = start + len(out)
    out += b"xref\n%d %d\n" % (first, len(objects))
    for number in sorted(offsets):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        first + len(objects),
        new_catalog,
        startxref[1],
        xref,
    )
    return bytes(out)


def _count(pdf: _Pdf, pages: re.Match[bytes]) -> int:
    body = pdf.object_body(int(pages[1]), int(pages[2])) or b""
    found = re.search(rb"/Count\s+([0-9]+)", body)
    return int(found[1]) if found else 1
