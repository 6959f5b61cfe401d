"""The sandbox TdT serves a stamped acte as the acte's bytes followed by the stamp's
increment, never joined in memory: the bytes are exactly ``stamp_pdf``'s, whether the
connector reads them whole or streams them into a store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from benchmarks.large_document import pdf_parts
from connectors.tdt import UploadFile
from relais.documents import sample_pdf
from sandbox.tdt.stamp import stamp_increment, stamp_pdf
from tests.unit.test_tdt_connector_against_sandbox import SCHEDULE, form, tdt


def test_the_increment_is_what_stamp_pdf_appends() -> None:
    for pdf in (sample_pdf("x"), sample_pdf("y").rstrip(b"\n"),
                b"".join(pdf_parts(300_000, os.urandom(65536)))):
        increment = stamp_increment(pdf, ["Recu en prefecture", "ID : 1"])
        assert increment and stamp_pdf(pdf, ["Recu en prefecture", "ID : 1"]) == pdf + increment
    assert stamp_increment(b"%PDF-1.4 no trailer", ["x"]) == b""
    assert stamp_pdf(b"%PDF-1.4 no trailer", ["x"]) == b"%PDF-1.4 no trailer"


async def test_a_large_stamped_acte_is_served_as_stamp_pdf_makes_it() -> None:
    pdf = b"".join(pdf_parts(3_000_000, os.urandom(1 << 20)))
    chunks: list[bytes] = []

    async def store(stream: AsyncIterator[bytes]) -> bytes:
        chunks.extend([chunk async for chunk in stream])
        return b"".join(chunks)

    async with tdt() as box:
        posted = await box.connector.post_acte(form(), [UploadFile("grand.pdf", pdf)])
        box.clock.advance(SCHEDULE.acknowledge_after)
        assert (await box.connector.get_status(posted.transaction_id)).status == 4
        streamed = await box.connector.save_stamped_acte(posted.transaction_id, store)
        whole = await box.connector.get_stamped_acte(posted.transaction_id)
    assert streamed == whole
    assert streamed.startswith(pdf) and len(streamed) > len(pdf)
    increment = streamed[len(pdf):]  # the stamp's page, xref and trailer, after the acte
    assert b"(ID : " in increment and increment.endswith(b"%%EOF\n")
    assert increment == stamp_increment(pdf, _lines(increment))


def _lines(increment: bytes) -> list[str]:
    """The stamp lines drawn in an increment (``(text) Tj``)."""
    import re

    return [m.decode("ascii") for m in re.findall(rb"\(([^()]*)\) Tj", increment)]
