"""The bounded tar reader: what it accepts, and every way it refuses."""

from __future__ import annotations

import asyncio
import gzip
import io
import tarfile
import time
from collections.abc import Sequence

import pytest

from relais.actes.archive import pack_archive, read_transmission
from relais.actes.archive_reader import (
    ARCHIVE_DUPLICATE,
    ARCHIVE_EMPTY,
    ARCHIVE_ENTRY_NAME,
    ARCHIVE_ENTRY_TYPE,
    ARCHIVE_HEADER_TOO_LARGE,
    ARCHIVE_TIMEOUT,
    ARCHIVE_TOO_LARGE,
    ARCHIVE_TOO_MANY_ENTRIES,
    ARCHIVE_UNREADABLE,
    ArchiveLimits,
    read_archive,
    read_partner_archive,
)
from relais.errors import PartnerReplyError, PartnerReplyTooLargeError, ValidationError


def tar_of(entries: Sequence[tarfile.TarInfo | tuple[str, bytes]], *,
           fmt: int = tarfile.GNU_FORMAT, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, content = entry
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    raw = buffer.getvalue()
    return gzip.compress(raw) if compress else raw


def refusal(data: bytes, limits: ArchiveLimits | None = None) -> str:
    with pytest.raises(ValidationError) as caught:
        read_archive(data, limits)
    assert [r.field for r in caught.value.reasons] == ["archive"]
    return caught.value.reasons[0].code


def test_reads_what_pack_archive_writes_in_order() -> None:
    members = [("b.xml", b"<x/>"), ("a.pdf", b"%PDF-1.4" + bytes(1000)), ("empty.txt", b"")]
    assert list(read_archive(pack_archive(members)).items()) == members
    assert read_transmission(pack_archive(members)) == dict(members)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_and_non_ascii_names_through_gnu_and_pax_headers(fmt: int) -> None:
    long_name = "99_DE-" + "x" * 180 + "_1.pdf"
    members = [(long_name, b"%PDF"), ("délibération.pdf", b"%PDF-2")]
    assert read_archive(tar_of(members, fmt=fmt)) == dict(members)


def test_plain_tar_and_multi_member_gzip_are_read() -> None:
    plain = tar_of([("a.xml", b"<a/>")], compress=False)
    assert read_archive(plain) == {"a.xml": b"<a/>"}
    # a gzip stream in two members (what `cat a.gz b.gz` gives)
    assert read_archive(gzip.compress(plain[:512]) + gzip.compress(plain[512:])) == {
        "a.xml": b"<a/>"
    }


@pytest.mark.parametrize(
    "data",
    [b"", bytes(10240), gzip.compress(bytes(10240)), gzip.compress(b"")],
    ids=["no-bytes", "zeros", "gzip-of-zeros", "gzip-of-nothing"],
)
def test_empty_or_all_zero_archives_are_errors_not_empty_results(data: bytes) -> None:
    assert refusal(data) == ARCHIVE_EMPTY


@pytest.mark.parametrize(
    "data",
    [b"not an archive at all" * 30, b"\x1f\x8b" + b"garbage" * 100,
     gzip.compress(b"x" * 2048)],
    ids=["text", "broken-gzip", "gzip-of-text"],
)
def test_garbage_is_unreadable(data: bytes) -> None:
    assert refusal(data) == ARCHIVE_UNREADABLE


def test_truncated_archives_are_unreadable() -> None:
    whole = tar_of([("a.pdf", b"%PDF" * 1000)], compress=False)
    assert refusal(whole[:700]) == ARCHIVE_UNREADABLE  # cut inside the content
    assert refusal(gzip.compress(whole)[:-40]) == ARCHIVE_UNREADABLE  # gzip cut short


def test_paths_links_directories_and_duplicates_are_refused() -> None:
    assert refusal(tar_of([("../evil.xml", b"x")])) == ARCHIVE_ENTRY_NAME
    assert refusal(tar_of([("dir/evil.xml", b"x")])) == ARCHIVE_ENTRY_NAME
    assert refusal(tar_of([("/etc/passwd", b"x")])) == ARCHIVE_ENTRY_NAME
    link = tarfile.TarInfo("link.pdf")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    assert refusal(tar_of([link])) == ARCHIVE_ENTRY_TYPE
    hard = tarfile.TarInfo("hard.pdf")
    hard.type, hard.linkname = tarfile.LNKTYPE, "a.pdf"
    assert refusal(tar_of([("a.pdf", b"x"), hard])) == ARCHIVE_ENTRY_TYPE
    directory = tarfile.TarInfo("docs")
    directory.type = tarfile.DIRTYPE
    assert refusal(tar_of([directory])) == ARCHIVE_ENTRY_TYPE
    assert refusal(tar_of([("a.pdf", b"x"), ("a.pdf", b"y")])) == ARCHIVE_DUPLICATE


def test_a_declared_size_over_the_cap_is_refused_before_expanding() -> None:
    header = tarfile.TarInfo("huge.pdf")
    header.size = 10 * 1024**3  # 10 GiB declared, nothing behind it
    raw = header.tobuf(tarfile.GNU_FORMAT)
    assert refusal(gzip.compress(raw)) == ARCHIVE_TOO_LARGE
    # the cap counts headers, padding and the end-of-archive block too
    data = pack_archive([("a.xml", b"x" * 100)])
    assert refusal(data, ArchiveLimits(max_bytes=600)) == ARCHIVE_TOO_LARGE
    assert read_archive(data, ArchiveLimits(max_bytes=1536)) == {"a.xml": b"x" * 100}


def test_extended_headers_are_capped_before_being_read() -> None:
    long_name = "n" * 5000 + ".pdf"
    data = tar_of([(long_name, b"x")])
    assert refusal(data, ArchiveLimits(max_header_bytes=4096)) == ARCHIVE_HEADER_TOO_LARGE
    assert refusal(tar_of([(long_name, b"x")], fmt=tarfile.PAX_FORMAT),
                   ArchiveLimits(max_header_bytes=4096)) == ARCHIVE_HEADER_TOO_LARGE


def test_every_header_counts_towards_the_entry_cap() -> None:
    members = [(f"{i}.xml", b"") for i in range(6)]
    assert refusal(tar_of(members), ArchiveLimits(max_entries=5)) == ARCHIVE_TOO_MANY_ENTRIES
    long_names = [("n" * 150 + f"{i}.xml", b"") for i in range(3)]  # 2 headers each
    assert refusal(tar_of(long_names), ArchiveLimits(max_entries=5)) == ARCHIVE_TOO_MANY_ENTRIES
    assert len(read_archive(tar_of(long_names), ArchiveLimits(max_entries=6))) == 3


def test_a_bad_checksum_is_unreadable() -> None:
    raw = bytearray(tar_of([("a.xml", b"x")], compress=False))
    raw[0] = ord("b")
    assert refusal(bytes(raw)) == ARCHIVE_UNREADABLE


def test_reading_stops_at_the_deadline() -> None:
    assert refusal(pack_archive([("a.xml", b"x")]), ArchiveLimits(max_seconds=0)) == (
        ARCHIVE_TIMEOUT
    )


async def test_partner_archive_errors_are_typed() -> None:
    with pytest.raises(PartnerReplyError) as unreadable:
        await read_partner_archive(bytes(4096), partner="tdt")
    assert type(unreadable.value) is PartnerReplyError
    assert unreadable.value.partner == "tdt"
    assert unreadable.value.reasons[0].code == ARCHIVE_EMPTY
    assert not unreadable.value.retriable
    header = tarfile.TarInfo("huge.pdf")
    header.size = 2**40
    with pytest.raises(PartnerReplyTooLargeError) as large:
        await read_partner_archive(gzip.compress(header.tobuf()), partner="tdt")
    assert large.value.reasons[0].code == ARCHIVE_TOO_LARGE


async def test_partner_archives_are_read_off_the_event_loop() -> None:
    data = pack_archive([(f"{i}.bin", bytes(8 * 1024 * 1024)) for i in range(8)])
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    files = await read_partner_archive(data, partner="tdt")
    elapsed = time.monotonic() - started
    ticking.cancel()
    assert len(files) == 8
    assert gaps, "the event loop never ran while the archive was read"
    assert max(gaps) < max(0.25, elapsed / 4)
