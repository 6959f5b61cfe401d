"""The large-document benchmark's generated PDF: exactly the size asked, produced in
bounded chunks, and a PDF whose cross-reference table points at its objects."""

from __future__ import annotations

import os
import re

import pytest

from benchmarks import BenchmarkError
from benchmarks.large_document import pdf_parts, status_kb


@pytest.mark.parametrize("size", [2000, 99_999, 1_000_000, 3 * 1024 * 1024 + 7])
def test_the_pdf_has_the_size_asked_in_bounded_chunks(size: int) -> None:
    block = os.urandom(65536)
    parts = list(pdf_parts(size, block))
    assert sum(len(p) for p in parts) == size
    assert max(len(p) for p in parts) <= max(len(block), 1024)
    data = b"".join(parts)
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    xref = int(re.search(rb"startxref\n([0-9]+)\n%%EOF\n$", data)[1])  # type: ignore[index]
    assert data[xref:xref + 5] == b"xref\n"
    offsets = [int(o) for o in re.findall(rb"([0-9]{10}) 00000 n ", data[xref:])]
    for number, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(b"%d 0 obj\n" % number)


def test_a_size_too_small_for_a_pdf_is_refused() -> None:
    with pytest.raises(BenchmarkError):
        list(pdf_parts(100, b"x" * 10))


def test_status_kb_reads_this_process_and_none_for_a_gone_one() -> None:
    rss = status_kb(os.getpid(), "VmRSS")
    assert rss is not None and rss > 1000
    assert status_kb(2**22 + 12345, "VmRSS") is None
