"""The sandbox TdT keeps each acte, its archive and the prefecture's documents in files under
its data directory, as S²LOW keeps them under ``ACTES_FILES_UPLOAD_ROOT``, and copies, packs
and serves them in chunks: no object of its state holds an acte, the file served is the file
stored, and posting a large acte does not allocate its size in the sandbox."""

from __future__ import annotations

import dataclasses
import os
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.large_document import pdf_parts
from connectors.tdt import S2lowConnector, UploadFile
from relais.actes.archive import pack_archive, read_transmission
from sandbox.tdt import SandboxConfig, create_tdt_sandbox, stamp
from sandbox.tdt.files import member, write_archive
from sandbox.tdt.state import TdtState
from tests.unit.test_tdt_connector_against_sandbox import ACCOUNTS, BASE, SCHEDULE, Clock, form

MB = 1_000_000


@dataclass
class Box:
    clock: Clock
    connector: S2lowConnector
    client: httpx.AsyncClient
    state: TdtState


@asynccontextmanager
async def sandbox(**config: Any) -> AsyncIterator[Box]:
    clock = Clock()

    async def no_sleep(seconds: float) -> None:
        return None

    app = create_tdt_sandbox(SandboxConfig(schedule=SCHEDULE, accounts=ACCOUNTS, **config),
                             clock=clock, sleep=no_sleep)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               auth=("mairie", ACCOUNTS[0].password), follow_redirects=False)
    async with client:
        yield Box(clock, S2lowConnector(client, base_url=BASE), client, app.state.tdt)


def large_pdf(size: int) -> bytes:
    return b"".join(pdf_parts(size, os.urandom(1 << 16)))


def _held_bytes(value: Any) -> int:
    """The largest bytes value reachable through dataclass fields, lists and tuples."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return max((_held_bytes(getattr(value, f.name)) for f in dataclasses.fields(value)),
                   default=0)
    if isinstance(value, list | tuple):
        return max((_held_bytes(item) for item in value), default=0)
    return 0


async def test_the_acte_and_its_archive_are_files_and_the_served_ones(tmp_path: Path) -> None:
    pdf = large_pdf(3 * MB)
    async with sandbox(data_dir=str(tmp_path)) as box:
        posted = await box.connector.post_acte(form(), [UploadFile("grand.pdf", pdf)])
        transaction = box.state.transactions[int(posted.transaction_id)]
        envelope = box.state.envelopes[transaction.envelope_id]
        [included] = transaction.files
        # stored under the configured data directory, nowhere in the state's objects
        assert envelope.path.is_file() and envelope.path.is_relative_to(tmp_path)
        assert included.path.read_bytes() == pdf and included.size == len(pdf)
        for held in (transaction, envelope, included):
            assert _held_bytes(held) < 64 * 1024
        served = await box.client.get(f"{BASE}/modules/actes/actes_download_file.php",
                                      params={"env": str(envelope.id)})
        assert served.headers["content-type"] == "application/x-gzip"
        assert served.content == envelope.path.read_bytes()
        assert int(served.headers["content-length"]) == envelope.size == len(served.content)
        members = read_transmission(served.content, max_bytes=10 * MB)
        assert list(members)[2] == included.name and members[included.name] == pdf
        assert list(members)[1].endswith("_0.xml") and transaction.packed.archive_bytes == b""
        file = await box.client.get(f"{BASE}/modules/actes/actes_download_file.php",
                                    params={"file": str(included.id)})
        assert file.content == pdf
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert (await box.connector.get_status(posted.transaction_id)).status == 4
        stamped = await box.connector.get_stamped_acte(posted.transaction_id)
        increment = stamped[len(pdf):]
        assert stamped.startswith(pdf) and b"(ID : " in increment
        assert increment == stamp.stamp_increment(pdf, _lines(increment))
        await box.client.post(f"{BASE}/sandbox/reset")
        assert not envelope.path.exists() and not included.path.exists()


def _lines(increment: bytes) -> list[str]:
    import re

    return [m.decode("ascii") for m in re.findall(rb"\(([^()]*)\) Tj", increment)]


async def test_posting_a_large_acte_does_not_allocate_its_size_in_the_sandbox() -> None:
    """The post is read into a spool on disk, packed from it and copied from it in chunks:
    Python's allocations while the sandbox handles it stay far below the acte's size (they
    were about three times its size when the upload was read back and packed in memory)."""
    pdf = large_pdf(12 * MB)
    async with sandbox() as box:
        tracemalloc.start()
        try:
            posted = await box.connector.post_acte(form(), [UploadFile("grand.pdf", pdf)])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        transaction = box.state.transactions[int(posted.transaction_id)]
        assert box.state.envelopes[transaction.envelope_id].size > len(pdf)
    assert peak < 4 * MB, f"peak {peak} bytes while posting a {len(pdf)}-byte acte"


async def test_an_archive_over_the_limit_is_refused_and_leaves_no_file() -> None:
    pdf = large_pdf(2 * MB)
    async with sandbox(max_total_bytes=len(pdf) + 512) as box:
        answer = await box.client.post(
            f"{BASE}/modules/actes/actes_transac_create.php",
            data={"api": "1", "nature_code": "1", "number": "D2024_001",
                  "subject": "Budget", "decision_date": "2024-02-28", "classif1": "7",
                  "classif2": "1", "type_acte": "99_DE"},
            files={"acte_pdf_file": ("grand.pdf", pdf, "application/pdf")},
        )
        text = answer.content.decode("iso-8859-1")
        assert text.startswith("KO\nla taille d&#039;archive générée n&#039;est pas conforme")
        assert f"(maximum {len(pdf) + 512} octets autorisés)" in text
        assert list(box.state.store.root.iterdir()) == []
        assert box.state.transactions == {}


def test_the_archive_written_from_files_is_the_one_packed_in_memory(tmp_path: Path) -> None:
    documents = [("a.xml", b"<a/>"), ("b.xml", b"<b/>" * 300), ("c.pdf", os.urandom(300_001))]
    path = tmp_path / "x.tar.gz"
    size = write_archive(path, [member(name, data) for name, data in documents])
    assert path.read_bytes() == pack_archive(documents) and size == path.stat().st_size


@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_the_stamp_read_from_a_file_is_the_stamp_of_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int,
) -> None:
    monkeypatch.setattr(stamp, "_CHUNK", chunk)  # small windows: matches across their edges
    lines = ["Recu en prefecture le 01/03/2024", "ID : 006-210600235-20240228-D1-DE"]
    for pdf in (large_pdf(300_000), large_pdf(2 * MB), b"%PDF-1.4 no trailer"):
        path = tmp_path / "acte.pdf"
        path.write_bytes(pdf)
        assert stamp.stamp_file_increment(path, lines) == stamp.stamp_increment(pdf, lines)
    assert stamp.stamp_increment(large_pdf(300_000), lines)
