"""Archives a compromised or buggy TdT could send (issue 13, F5), read as the watcher reads them.

Each archive is written to a file here and opened by a fresh interpreter with
:func:`relais.actes.archive_reader.read_partner_archive`, as the prefecture
watcher does. The child reports the error it got, how long it took, the longest
stall of its event loop (a ticker every 10 ms, standing in for the Kafka
heartbeats) and its peak RSS (``VmHWM``). Before this reader, the first archive
took the worker to 1.78 GB and blocked its loop ~24 s; the second expanded 1 MB
into 3.1 GB; the zeros were read as an empty archive and delivered as a déféré
with no documents.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.hostile

PEAK_RSS_LIMIT_MB = 300
TIME_LIMIT_S = 15.0
LOOP_STALL_LIMIT_S = 0.5
MIB = 1024 * 1024

CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from relais.actes.archive_reader import read_partner_archive

def rss_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)

async def main():
    data = Path(sys.argv[1]).read_bytes()
    before = rss_mb("VmRSS")
    gaps = [0.0]
    async def ticker():
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last - 0.01)
            last = now
    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    outcome = {"error": None, "code": None, "files": None}
    try:
        files = await read_partner_archive(data, partner="tdt")
        outcome["files"] = len(files)
    except Exception as exc:
        outcome["error"] = type(exc).__name__
        outcome["code"] = exc.reasons[0].code if getattr(exc, "reasons", None) else None
        outcome["retriable"] = getattr(exc, "retriable", None)
    outcome["seconds"] = time.monotonic() - started
    ticking.cancel()
    outcome.update(max_stall=max(gaps), rss_before_mb=before, peak_rss_mb=rss_mb("VmHWM"),
                   archive_bytes=len(data))
    print(json.dumps(outcome))

asyncio.run(main())
"""


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(tarfile.USTAR_FORMAT if kind == tarfile.REGTYPE else tarfile.GNU_FORMAT)


def _gzip_stream(parts: Iterator[bytes]) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    return b"".join(out)


def _zeros(size: int) -> Iterator[bytes]:
    chunk = bytes(MIB)
    while size > 0:
        yield chunk[: min(size, MIB)]
        size -= MIB


def _repeat(pattern: bytes, size: int) -> Iterator[bytes]:
    chunk = pattern * (MIB // len(pattern))
    while size > 0:
        yield chunk[: min(size, len(chunk))]
        size -= len(chunk)


def pax_record_bomb() -> bytes:
    """One PAX header of ~34 MB of tiny records, ~51 KB compressed (the issue's first figure)."""
    records = 34 * MIB // 6
    size = records * 6
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, size
    raw = header.tobuf(tarfile.USTAR_FORMAT)

    def parts() -> Iterator[bytes]:
        yield raw
        yield from _repeat(b"6 a=b\n", size)
        yield bytes(-size % 512)
        yield _header("x.pdf", 4) + b"%PDF" + bytes(508) + bytes(1024)

    return _gzip_stream(parts())


def long_name_bomb() -> bytes:
    """A GNU long-name header declaring 1 GiB, with its 1 GiB of name behind it (~1 MB gz)."""
    size = 1024 * MIB
    raw = _header("././@LongLink", size, tarfile.GNUTYPE_LONGNAME)
    return _gzip_stream(iter([raw, *_repeat(b"a", size)]))


def many_long_names() -> bytes:
    """20,000 long-name headers of 60 KiB each, each under the header cap (1.2 GB expanded)."""
    size = 60 * 1024
    one = _header("././@LongLink", size, tarfile.GNUTYPE_LONGNAME) + b"n" * size

    def parts() -> Iterator[bytes]:
        for _ in range(20_000):
            yield one

    return _gzip_stream(parts())


def content_bomb() -> bytes:
    """Ten files of 50 MB of zeros (500 MB expanded, ~0.5 MB compressed)."""
    size = 50 * MIB

    def parts() -> Iterator[bytes]:
        for index in range(10):
            yield _header(f"piece-{index}.pdf", size)
            yield from _zeros(size)
        yield bytes(1024)

    return _gzip_stream(parts())


BOMBS = {
    "pax-records-51KB": (pax_record_bomb, "PartnerReplyTooLargeError", "archive_header_too_large"),
    "long-name-1MB": (long_name_bomb, "PartnerReplyTooLargeError", "archive_header_too_large"),
    "many-long-names": (many_long_names, "PartnerReplyTooLargeError", "archive_too_many_entries"),
    "content-500MB": (content_bomb, "PartnerReplyTooLargeError", "archive_too_large"),
    "all-zero-body": (lambda: bytes(MIB), "PartnerReplyError", "archive_empty"),
    "gzip-of-zeros": (lambda: gzip.compress(bytes(MIB)), "PartnerReplyError", "archive_empty"),
    "html-error-page": (
        lambda: b"<html><body>Erreur interne</body></html>", "PartnerReplyError",
        "archive_unreadable",
    ),
}


def run_child(path: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


@pytest.mark.parametrize("name", list(BOMBS))
def test_hostile_archive_ends_as_a_typed_error_within_bounds(name: str, tmp_path: Path) -> None:
    build, error, code = BOMBS[name]
    path = tmp_path / f"{name}.tar.gz"
    path.write_bytes(build())
    outcome = run_child(path)
    print(name, json.dumps(outcome))
    assert (outcome["error"], outcome["code"]) == (error, code)
    assert outcome["retriable"] is False
    assert outcome["files"] is None  # never an (empty) delivery
    assert float(outcome["seconds"]) < TIME_LIMIT_S  # type: ignore[arg-type]
    assert float(outcome["max_stall"]) < LOOP_STALL_LIMIT_S  # type: ignore[arg-type]
    assert float(outcome["peak_rss_mb"]) < PEAK_RSS_LIMIT_MB  # type: ignore[arg-type]


def test_issue_figures_are_reproduced() -> None:
    """The bombs are as small as the issue says: the bounds above are not met by accident."""
    assert len(pax_record_bomb()) < 56 * 1024
    assert len(long_name_bomb()) < 1.2 * MIB


def test_a_legitimate_large_archive_still_opens_within_bounds(tmp_path: Path) -> None:
    """Three 40 MB documents (120 MB expanded): read whole, under the same bounds."""
    size = 40 * MIB

    def parts() -> Iterator[bytes]:
        for index in range(3):
            yield _header(f"{index}-annexe.pdf", size)
            yield from _zeros(size)
        yield bytes(1024)

    path = tmp_path / "large.tar.gz"
    path.write_bytes(_gzip_stream(parts()))
    outcome = run_child(path)
    print(json.dumps(outcome))
    assert outcome["files"] == 3
    assert float(outcome["max_stall"]) < LOOP_STALL_LIMIT_S  # type: ignore[arg-type]
    assert float(outcome["peak_rss_mb"]) < PEAK_RSS_LIMIT_MB  # type: ignore[arg-type]
