"""The transmission tar.gz is compressed as it is written (``pack_archive``): byte for byte
what the one-shot ``gzip.compress`` of the whole tar makes, and ``Transmission`` carries
the message XML it packed (a TdT needs it without unpacking a 150 MB archive again)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from datetime import date

import pytest

from relais.actes.archive import build_transmission, pack_archive, read_transmission
from relais.actes.metadata import ActeMetadata


def one_shot(members: list[tuple[str, bytes]], mtime: int = 0) -> bytes:
    """The archive as made before: the whole tar in memory, then ``gzip.compress``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = mtime
            info.mode = 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=mtime)


@pytest.mark.parametrize("mtime", [0, 1_700_000_000])
@pytest.mark.parametrize("sizes", [(), (0,), (10, 3_000_000, 511, 512, 513)])
def test_streamed_archive_equals_the_one_shot_one(mtime: int, sizes: tuple[int, ...]) -> None:
    members = [(f"f{n}.bin", b"%PDF-" * (n % 2) + os.urandom(size))
               for n, size in enumerate(sizes)]
    members.append(("message.xml", b"<actes:Acte/>" * 4000))  # compressible too
    assert pack_archive(members, mtime=mtime) == one_shot(members, mtime)


def test_the_transmission_carries_its_packed_message() -> None:
    meta = ActeMetadata(
        siren="212102313", department="021", decision_date=date(2026, 3, 2),
        numero_interne="DELIB42", nature_code=1, matieres=(1, 1), objet="Budget",
        classification_date=date(2025, 1, 1), document_papier=False, main_file="acte.pdf")
    transmission = build_transmission(
        meta, {"acte.pdf": b"%PDF-1.4\n" + os.urandom(100_000)}, trigram="SBX",
        transmission_date=date(2026, 3, 2), sequence=1, arrondissement=1,
        nature_collectivite=1, return_emails=["greffe@example.org"])
    members = read_transmission(transmission.archive_bytes)
    assert transmission.message_xml
    assert members[transmission.message_name] == transmission.message_xml
