"""Reading S²LOW form posts byte for byte.

Starlette decodes multipart text fields as UTF-8, which would hide a client
that sends ``subject`` in the wrong charset. The sandbox reads the body with
python-multipart directly and keeps every field value as bytes; files are
counted while they stream in, so an oversized post is refused without holding
more than the limit in memory. A file part goes to a temporary file as it
arrives, as PHP spools uploads to ``upload_tmp_dir`` before S²LOW sees them, and
stays there: the handler reads its head (to sniff its type), copies it in chunks to
where the sandbox keeps it (:mod:`sandbox.tdt.files`) and reads whole only the small
files (a signature, a reply letter). :meth:`RawForm.close` removes the spools.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import parse_qsl

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request


class FormError(Exception):
    """The body is not a readable form; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


SPOOL_IN_MEMORY = 1024 * 1024
"""File parts up to this size stay in memory while they arrive; larger ones go to disk."""


@dataclass
class FormFile:
    """One uploaded file, kept in its spool (in memory up to :data:`SPOOL_IN_MEMORY`, on
    disk beyond)."""

    field_name: str
    filename: str
    content_type: str
    spool: IO[bytes] = field(default_factory=io.BytesIO)
    size: int = 0

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes."""
        self.spool.seek(0)
        return self.spool.read(size)

    def read(self) -> bytes:
        """Every byte: for the small files only (a signature, a reply letter)."""
        self.spool.seek(0)
        return self.spool.read()

    def opened(self) -> IO[bytes]:
        """The spool at its start, to copy in chunks."""
        self.spool.seek(0)
        return self.spool


def form_file(field_name: str, filename: str, data: bytes,
              content_type: str = "application/octet-stream") -> FormFile:
    """A file part holding ``data`` (tests, and files built by the sandbox itself)."""
    return FormFile(field_name, filename, content_type, io.BytesIO(data), len(data))


@dataclass
class RawForm:
    """A parsed form: text values as bytes, files, and the total bytes of files."""

    values: dict[str, list[bytes]] = field(default_factory=dict)
    files: dict[str, list[FormFile]] = field(default_factory=dict)
    file_bytes: int = 0

    def close(self) -> None:
        """Remove the files' spools (the handler copied what it keeps)."""
        for files in self.files.values():
            for file in files:
                file.spool.close()

    def first(self, name: str) -> bytes | None:
        found = self.values.get(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        """The first value of ``name`` decoded as ISO-8859-1 (S²LOW's charset)."""
        raw = self.first(name)
        return None if raw is None else raw.decode("iso-8859-1")


class _PartCollector:
    def __init__(self, form: RawForm, max_file_bytes: int) -> None:
        self.form = form
        self.max_file_bytes = max_file_bytes
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.data = bytearray()
        self.spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        self.part_bytes = 0

    def on_part_begin(self) -> None:
        self.headers = {}
        self.data = bytearray()
        self.spool = None
        self.part_bytes = 0

    def on_header_end_of_headers(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if b"filename" in options:
            self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field = bytearray()
        self.header_value = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if b"filename" in options:
            self.form.file_bytes += end - start
            if self.form.file_bytes > self.max_file_bytes:
                raise FormError(
                    "files", f"the files exceed the {self.max_file_bytes} bytes a TdT accepts"
                )
        piece = memoryview(data)[start:end]  # no copy: a transport may hand the whole body
        if self.spool is not None:
            self.part_bytes += len(piece)
            if self.part_bytes > SPOOL_IN_MEMORY:
                self.spool.rollover()  # to disk before a large piece lands in memory
            self.spool.write(piece)
        else:
            self.data += piece

    def on_part_end(self) -> None:
        disposition, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise FormError("body", "a part without a form-data name")
        name = options[b"name"].decode("iso-8859-1")
        if b"filename" in options:
            content_type = self.headers.get(b"content-type", b"application/octet-stream")
            spool: IO[bytes] = self.spool or io.BytesIO(bytes(self.data))
            self.spool = None
            size = spool.tell()
            spool.seek(0)
            self.form.files.setdefault(name, []).append(
                FormFile(
                    field_name=name,
                    filename=options[b"filename"].decode("iso-8859-1"),
                    content_type=content_type.decode("iso-8859-1"),
                    spool=spool,
                    size=size,
                )
            )
        else:
            self.form.values.setdefault(name, []).append(bytes(self.data))

    def close(self) -> None:
        """Remove a part left half-read (a refused or malformed body)."""
        if self.spool is not None:
            self.spool.close()
            self.spool = None


async def read_form(request: Request, *, max_file_bytes: int) -> RawForm:
    """Parse a multipart or url-encoded body; FormError when it is neither or too large."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    form = RawForm()
    if content_type == b"application/x-www-form-urlencoded":
        body = await request.body()
        for key, value in parse_qsl(body.decode("iso-8859-1"), encoding="iso-8859-1"):
            form.values.setdefault(key, []).append(value.encode("iso-8859-1"))
        return form
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise FormError("body", "expected a multipart/form-data or url-encoded form")
    collector = _PartCollector(form, max_file_bytes)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_header_end_of_headers,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        form.close()
        raise FormError("body", f"malformed multipart body: {exc}") from exc
    except BaseException:
        form.close()
        raise
    finally:
        collector.close()
    return form
