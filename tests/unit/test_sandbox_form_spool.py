"""The sandbox TdT's form reader spools file parts to a temporary file as they arrive (as
PHP spools uploads) and leaves them there: the bytes are the ones posted, a large part goes
to disk and is never read back whole by the reader, and closing the form (or a refused
body) leaves nothing open."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from starlette.requests import Request

from connectors.tdt.models import UploadFile
from connectors.tdt.multipart import MultipartBody
from sandbox.tdt.forms import FormError, read_form


async def _request(body: MultipartBody, chunk: int = 65536) -> Request:
    raw = b"".join([part async for part in body])
    pieces = [raw[i:i + chunk] for i in range(0, len(raw), chunk)]

    async def receive() -> dict[str, Any]:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(b"content-type", body.content_type.encode("ascii"))]}
    return Request(scope, receive)


class Spools:
    """Records the temporary files the reader makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[Any] = []
        real = tempfile.SpooledTemporaryFile

        def make(*args: Any, **kwargs: Any) -> Any:
            spool = real(*args, **kwargs)
            self.made.append(spool)
            return spool

        monkeypatch.setattr(tempfile, "SpooledTemporaryFile", make)


async def test_file_parts_are_spooled_and_read_back_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spools = Spools(monkeypatch)
    big = b"%PDF-1.4\n" + os.urandom(3_000_000)
    small = b"%PDF-1.4\nsmall"
    body = MultipartBody([("api", b"1"), ("objet", "Délibération".encode("iso-8859-1"))],
                         [("acte_pdf_file", UploadFile("acte.pdf", big)),
                          ("acte_attachments[]", UploadFile("annexe.pdf", small))])
    form = await read_form(await _request(body), max_file_bytes=10_000_000)
    assert form.text("objet") == "Délibération" and form.first("api") == b"1"
    main, annex = form.files["acte_pdf_file"][0], form.files["acte_attachments[]"][0]
    assert (main.size, annex.size) == (len(big), len(small))
    assert spools.made[0]._rolled and not spools.made[1]._rolled  # the big one went to disk
    assert main.spool is spools.made[0] and annex.spool is spools.made[1]
    assert main.head(9) == b"%PDF-1.4\n" and main.read() == big and annex.read() == small
    assert form.file_bytes == len(big) + len(small)
    assert len(spools.made) == 2  # one per file part, none for the text fields
    assert not any(s.closed for s in spools.made)
    form.close()
    assert all(s.closed for s in spools.made)


async def test_a_refused_body_leaves_no_spool_open(monkeypatch: pytest.MonkeyPatch) -> None:
    spools = Spools(monkeypatch)
    body = MultipartBody([], [("acte_pdf_file", UploadFile("acte.pdf", os.urandom(2_000_000)))])
    with pytest.raises(FormError):
        await read_form(await _request(body), max_file_bytes=1_500_000)
    assert spools.made and all(s.closed for s in spools.made)
