"""Where the sandbox TdT keeps the archives and files it received: on disk, as S²LOW does.

S²LOW moves each posted file under ``ACTES_FILES_UPLOAD_ROOT/<siren>/<number>/``, writes
the envelope's tar.gz beside them (``tar cf - … | gzip -9 > …``:
``ActesEnvelope::generateArchiveFile``) and serves both from there. The sandbox keeps them
under its data directory (the configuration's ``data_dir``; by default a temporary
directory of its own, removed when the process ends), copies and packs them in chunks,
and serves them in chunks: a 150 MB acte never sits whole in the sandbox's memory.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from relais.actes.archive import GzipStreamWriter

CHUNK = 1024 * 1024
"""Bytes read or written at a time."""


class FileStore:
    """One directory of stored files; :meth:`clear` empties it (``/sandbox/reset``)."""

    def __init__(self, data_dir: str = "") -> None:
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="relais-sandbox-tdt-", dir=data_dir or None))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, True)
        self._last = 0

    def new_path(self, suffix: str) -> Path:
        """A fresh file name under the store (the file is not created)."""
        self._last += 1
        return self.root / f"{self._last:08d}{suffix}"

    def save(self, source: IO[bytes], suffix: str) -> Path:
        """Copy ``source`` (from its start) into a new file, in chunks."""
        path = self.new_path(suffix)
        source.seek(0)
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        return path

    def save_bytes(self, data: bytes, suffix: str) -> Path:
        path = self.new_path(suffix)
        path.write_bytes(data)
        return path

    def clear(self) -> None:
        """Remove every stored file."""
        for child in self.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def close(self) -> None:
        self._finalizer()


def chunks_of(path: Path, *, chunk: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes, ``chunk`` at a time."""
    with path.open("rb") as source:
        while block := source.read(chunk):
            yield block


def write_archive(path: Path, members: Sequence[tuple[str, int, IO[bytes]]]) -> int:
    """Write a tar.gz of ``members`` (name, size, readable file at its start) to ``path``,
    in order, reproducibly (USTAR, mtime 0, mode 0644, no owner names), reading each member
    in chunks; returns the archive's size in bytes.

    The bytes are those :func:`relais.actes.archive.pack_archive` makes of the same members.
    """
    with path.open("wb") as out:
        gz = GzipStreamWriter(out)
        with tarfile.open(fileobj=gz, mode="w",  # type: ignore[call-overload]
                          format=tarfile.USTAR_FORMAT) as tar:
            for name, size, source in members:
                info = tarfile.TarInfo(name)
                info.size = size
                info.mtime = 0
                info.mode = 0o644
                info.uname = info.gname = ""
                tar.addfile(info, source)
        gz.finish()
    return path.stat().st_size


def member(name: str, data: bytes) -> tuple[str, int, IO[bytes]]:
    """An in-memory member for :func:`write_archive` (the small XML files)."""
    return name, len(data), io.BytesIO(data)
