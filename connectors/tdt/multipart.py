"""A streaming multipart/form-data body with byte-exact field values.

httpx encodes text fields as UTF-8 and cannot stream async file contents inside
a multipart body. S²LOW wants ``subject`` in ISO-8859-1 and an acte may weigh
150 MB, so the connector encodes the body itself: fields are given as bytes,
files as bytes or async streams, and the body is produced chunk by chunk.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from connectors.tdt.models import FileLike

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")
COALESCE = 64 * 1024
"""Pieces smaller than this are sent together (fields, heads, small in-memory files)."""


def safe_filename(name: str) -> str:
    """The file name as sent in Content-Disposition: ASCII letters, digits, ``._ -`` only."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip()
    return cleaned or "document"


class MultipartBody:
    """One multipart/form-data request body.

    ``fields`` are (name, value bytes) pairs sent as is; ``files`` are (field
    name, file) pairs. Iterate with ``async for`` to get the body; an async file
    stream inside is consumed by that iteration, so the body can be sent once.
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, bytes]],
        files: Sequence[tuple[str, FileLike]],
        *,
        boundary: str | None = None,
    ) -> None:
        self.boundary = boundary or secrets.token_hex(16)
        self._fields = list(fields)
        self._files = list(files)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _field_head(self, name: str) -> bytes:
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        ).encode("ascii")

    def _file_head(self, name: str, file: FileLike) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; '
            f'filename="{safe_filename(file.name)}"\r\n'
            f"Content-Type: {file.media_type}\r\n\r\n"
        ).encode("ascii")

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode("ascii")

    @property
    def content_length(self) -> int | None:
        """Total size in bytes, or None when a streamed file has no declared size."""
        total = 0
        for name, value in self._fields:
            total += len(self._field_head(name)) + len(value) + 2
        for name, file in self._files:
            size = _known_size(file)
            if size is None:
                return None
            total += len(self._file_head(name, file)) + size + 2
        return total + len(self._tail())

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Small pieces (the fields, part heads, small files) go out together, up to
        # COALESCE bytes: each chunk is one TLS record and one socket write on the way,
        # and one parser call at the TdT (an acte's form made 16 of them, now 2 or 3).
        pending = bytearray()
        for name, value in self._fields:
            pending += self._field_head(name) + value + b"\r\n"
        for name, file in self._files:
            pending += self._file_head(name, file)
            content = file.content
            if isinstance(content, bytes | bytearray) and len(content) <= COALESCE:
                pending += content
            else:
                if pending:
                    yield bytes(pending)
                    pending.clear()
                if isinstance(content, bytes | bytearray):
                    yield bytes(content)
                else:
                    async for chunk in _chunks(content):
                        yield chunk
            pending += b"\r\n"
            if len(pending) >= COALESCE:
                yield bytes(pending)
                pending.clear()
        pending += self._tail()
        yield bytes(pending)


def _known_size(file: FileLike) -> int | None:
    if isinstance(file.content, bytes | bytearray):
        return len(file.content)
    size = getattr(file, "size", None)
    return size if isinstance(size, int) else None


async def _chunks(stream: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        if chunk:
            yield bytes(chunk)
