"""The tar.gz a TdT sends for one envelope, laid out and named as a TdT does.

Names (protocols.md §1.2, after STELA and S²LOW):

- message base name ``{DDD}-{SIREN}-{YYYYMMDD}-{NUMERO}-{NN}-{T}-{S}`` where the
  date is the **transmission** date (STELA writes the day the archive is made,
  not the decision date, which only the IDActe carries) and ``T-S`` the message
  code (``1-1`` for an acte);
- ``{base}_0.xml`` is the message XML; ``{typology}-{base}_1.{ext}`` the main
  document; ``{typology}-{base}_{n}.{ext}``, n ≥ 2, the annexes;
- the envelope is ``EACT--{SIREN}--{YYYYMMDD}-{seq}.xml``;
- the archive is ``{TRIGRAM}-{envelope name without .xml}.tar.gz``.

Archives are reproducible: fixed member order, mtime and ownership.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import PurePosixPath
from typing import IO, Any

from relais.actes.archive_reader import ArchiveLimits, read_archive
from relais.actes.metadata import ActeMetadata
from relais.actes.xml_build import Referent, build_acte, build_envelope_cl
from relais.errors import Reason, ValidationError

TRIGRAM_RE = re.compile(r"[A-Z0-9]{3}")
EXTENSION_RE = re.compile(r"[A-Za-z0-9]{1,10}")
DEFAULT_MAX_ARCHIVE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Transmission:
    """One acte ready to post: its IDActe, the archive and what the archive holds.

    ``metadata`` is the acte with its files renamed as in the archive.
    ``member_names`` lists the archive members in order: envelope, message XML,
    main document, annexes.
    """

    id_acte: str
    archive_name: str
    archive_bytes: bytes
    envelope_name: str
    message_name: str
    member_names: tuple[str, ...]
    metadata: ActeMetadata
    message_xml: bytes = b""
    """The message XML as packed in the archive (``message_name``'s content)."""


def message_base_name(
    department: str,
    siren: str,
    day: date,
    numero: str,
    nature: str,
    message_code: str = "1-1",
) -> str:
    """``{DDD}-{SIREN}-{YYYYMMDD}-{NUMERO}-{NN}-{T}-{S}``; ``day`` is the transmission date."""
    return f"{department}-{siren}-{day:%Y%m%d}-{numero}-{nature}-{message_code}"


def envelope_file_name(siren: str, day: date, sequence: int) -> str:
    """``EACT--{SIREN}--{YYYYMMDD}-{seq}.xml``, the collectivité's envelope."""
    return f"EACT--{siren}--{day:%Y%m%d}-{sequence}.xml"


def archive_file_name(trigram: str, envelope_name: str) -> str:
    """``{TRIGRAM}-{envelope name without .xml}.tar.gz``."""
    return f"{trigram}-{envelope_name.removesuffix('.xml')}.tar.gz"


def _extension(field: str, name: str, reasons: list[Reason]) -> str:
    suffix = PurePosixPath(name).suffix.removeprefix(".")
    if EXTENSION_RE.fullmatch(suffix) is None:
        reasons.append(Reason(field, "extension", f"{name!r} has no usable file extension"))
    return suffix.lower()


class GzipStreamWriter:
    """The write side of a file (``write``, ``tell``: what ``tarfile`` uses) compressing
    what it is given into ``out``, as ``gzip.compress`` with ``mtime=0`` (or ``gzip -9``)
    does in one shot (zlib's own gzip header, level 9): the tar is compressed as it is
    written, never held uncompressed beside its compressed copy. ``finish`` writes the
    trailer."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._zlib = zlib.compressobj(9, zlib.DEFLATED, 31)
        self._written = 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._out.write(self._zlib.compress(view))
        self._written += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self._written

    def finish(self) -> None:
        self._out.write(self._zlib.flush())


def pack_archive(members: Sequence[tuple[str, bytes]], mtime: int = 0) -> bytes:
    """A gzip-compressed tar of ``members`` (name, content), in order, reproducibly.

    The tar is compressed as it is written (a 150 MB acte is held once, compressed,
    besides its content), byte for byte what ``gzip.compress(tar, mtime=0)`` makes.
    """
    if mtime != 0:
        tar_buffer = io.BytesIO()
        _write_tar(tar_buffer, members, mtime)
        return gzip.compress(tar_buffer.getvalue(), mtime=mtime)
    out = io.BytesIO()
    writer = GzipStreamWriter(out)
    _write_tar(writer, members, mtime)
    writer.finish()
    return out.getvalue()


def _write_tar(fileobj: IO[bytes] | GzipStreamWriter, members: Sequence[tuple[str, bytes]],
               mtime: int) -> None:
    with tarfile.open(fileobj=fileobj, mode="w",  # type: ignore[call-overload]
                      format=tarfile.USTAR_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = mtime
            info.mode = 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))


def build_transmission(
    meta: ActeMetadata,
    documents: Mapping[str, bytes],
    *,
    trigram: str,
    transmission_date: date,
    sequence: int,
    arrondissement: int,
    nature_collectivite: int,
    return_emails: Sequence[str],
    referent: Referent | None = None,
) -> Transmission:
    """Lay out one acte as a TdT does and pack it with its ``EnveloppeCLMISILL``.

    ``meta.main_file`` and ``meta.annex_files`` name entries of ``documents``
    (the uploaded files); they are renamed ``{typology}-{base}_{n}.{ext}``.
    ``sequence`` is the envelope counter of the day. Raises ``ValidationError``
    when the metadata, a document or an envelope field is not acceptable.
    """
    reasons = list(meta.reasons())
    if TRIGRAM_RE.fullmatch(trigram) is None:
        reasons.append(Reason("trigram", "format", f"three upper-case characters, got {trigram!r}"))
    if sequence < 1:
        reasons.append(
            Reason("sequence", "range", f"the envelope sequence starts at 1: {sequence}")
        )
    originals = (meta.main_file, *meta.annex_files)
    fields = ("main_file", *(f"annex_files[{i}]" for i in range(len(meta.annex_files))))
    for field, name in zip(fields, originals, strict=True):
        if name not in documents:
            reasons.append(Reason(field, "missing", f"no document named {name!r} was given"))
    if len(set(originals)) != len(originals):
        reasons.append(Reason("annex_files", "duplicate", "each file must be given once"))
    extensions = [_extension(f, n, reasons) for f, n in zip(fields, originals, strict=True)]
    if reasons:
        raise ValidationError("cannot build the transmission", reasons=reasons)

    base = message_base_name(
        meta.department,
        meta.siren,
        transmission_date,
        meta.numero_interne,
        meta.nature.abbreviation,
    )
    message_name = f"{base}_0.xml"
    typologies = (
        meta.main_typology,
        *(meta.annex_typology(i) for i in range(len(meta.annex_files))),
    )
    new_names = [
        f"{typology}-{base}_{n}.{ext}"
        for n, (typology, ext) in enumerate(zip(typologies, extensions, strict=True), start=1)
    ]
    laid_out = replace(meta, main_file=new_names[0], annex_files=tuple(new_names[1:]))
    envelope_name = envelope_file_name(meta.siren, transmission_date, sequence)
    envelope = build_envelope_cl(
        meta.siren,
        meta.department,
        arrondissement,
        nature_collectivite,
        [message_name],
        return_emails,
        referent,
    )
    message_xml = build_acte(laid_out)
    members = [
        (envelope_name, envelope),
        (message_name, message_xml),
        *((new, documents[old]) for new, old in zip(new_names, originals, strict=True)),
    ]
    return Transmission(
        id_acte=meta.id_acte,
        archive_name=archive_file_name(trigram, envelope_name),
        archive_bytes=pack_archive(members),
        envelope_name=envelope_name,
        message_name=message_name,
        member_names=tuple(name for name, _ in members),
        metadata=laid_out,
        message_xml=message_xml,
    )


def read_transmission(
    archive_bytes: bytes, *, max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
) -> dict[str, bytes]:
    """The members of a transmission tar.gz, by name, in archive order.

    Read by :func:`relais.actes.archive_reader.read_archive`: only plain files
    with a bare name, each once; headers, long names and contents all count
    towards ``max_bytes`` (uncompressed) before they are expanded. Raises
    ``ValidationError`` (reason field ``archive``) otherwise, when the archive
    is empty or cannot be read. From a partner and in async code, use
    :func:`relais.actes.archive_reader.read_partner_archive`.
    """
    return read_archive(archive_bytes, ArchiveLimits(max_bytes=max_bytes))
