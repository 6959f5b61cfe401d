"""The multipart body: byte for byte the same, its small pieces sent together."""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart import MultipartParser

from connectors.tdt.models import UploadFile
from connectors.tdt.multipart import COALESCE, MultipartBody

FIELDS = [("api", b"1"), ("number", b"D2024_001"), ("subject", "Délibération".encode("latin-1")),
          ("classif1", b"7"), ("classif2", b"1"), ("type_pj[]", b"99_AU")]


async def stream(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def expected(boundary: str, files: list[tuple[str, str, bytes]]) -> bytes:
    out = b""
    for name, value in FIELDS:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                .encode() + value + b"\r\n")
    for name, filename, content in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
                + content + b"\r\n")
    return out + f"--{boundary}--\r\n".encode()


async def chunks_of(body: MultipartBody) -> list[bytes]:
    return [chunk async for chunk in body]


async def test_a_small_form_goes_in_one_chunk() -> None:
    pdf = b"%PDF-1.4 small acte\n"
    body = MultipartBody(FIELDS, [("acte_pdf_file", UploadFile("a.pdf", pdf)),
                                  ("acte_attachments[]", UploadFile("b.pdf", pdf))],
                         boundary="b0")
    chunks = await chunks_of(body)
    whole = expected("b0", [("acte_pdf_file", "a.pdf", pdf), ("acte_attachments[]", "b.pdf", pdf)])
    assert chunks == [whole]
    assert body.content_length == len(whole)


async def test_streamed_and_large_files_go_as_they_come_between_the_gathered_pieces() -> None:
    big = b"%PDF-" + b"x" * (COALESCE + 10)
    parts = [b"%PDF-1.4 ", b"streamed ", b"acte\n"]
    body = MultipartBody(FIELDS, [
        ("acte_pdf_file", UploadFile("a.pdf", stream(parts), size=sum(map(len, parts)))),
        ("acte_attachments[]", UploadFile("big.pdf", big)),
    ], boundary="b1")
    chunks = await chunks_of(body)
    whole = expected("b1", [("acte_pdf_file", "a.pdf", b"".join(parts)),
                            ("acte_attachments[]", "big.pdf", big)])
    assert b"".join(chunks) == whole and body.content_length == len(whole)
    # the fields and the first head together, the stream's chunks as they came, the
    # next head, the big file alone, the closing pieces together
    assert chunks[1:4] == parts and chunks[5] == big
    assert len(chunks) == 7
    seen: dict[str, bytes] = {}
    current: list[str] = []

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value = data[start:end].decode("latin-1")
        if "name=" in value:
            current.append(value.split('name="')[1].split('"')[0])
            seen[current[-1]] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        seen[current[-1]] += data[start:end]

    parser = MultipartParser("b1", {"on_header_value": on_header_value,  # type: ignore[arg-type]
                                    "on_part_data": on_part_data})
    for chunk in chunks:
        parser.write(chunk)
    assert seen["subject"] == "Délibération".encode("latin-1")
    assert seen["acte_pdf_file"] == b"".join(parts) and seen["acte_attachments[]"] == big
