"""Guess a document's media type from its first bytes.

Only a few formats matter to Relais and only magic numbers are trusted: the
result is a hint used when a submitter declared no type, never a check of what
the submitter declared. Office formats (ODF, OOXML) are zip files and are
reported as ``application/zip``.
"""

from __future__ import annotations

SNIFF_BYTES = 64
"""How many leading bytes :func:`sniff_media_type` looks at; more are ignored."""

_UTF8_BOM = b"\xef\xbb\xbf"
_XML_DECLARATIONS = (
    b"<?xml",
    "<?xml".encode("utf-16-le"),
    "<?xml".encode("utf-16-be"),
)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),  # empty archive
    (b"PK\x07\x08", "application/zip"),  # spanned archive
    (b"\x1f\x8b", "application/gzip"),
)


def sniff_media_type(first_bytes: bytes) -> str | None:
    """Return the media type the leading bytes reveal, or None when unknown.

    Recognises PDF (``%PDF-``), XML (a ``<?xml`` declaration, optionally after a
    byte order mark and white space, in UTF-8 or UTF-16), zip and gzip.
    """
    head = bytes(first_bytes[:SNIFF_BYTES])
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head[2:]
    elif head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :].lstrip(b" \t\r\n")
    else:
        head = head.lstrip(b" \t\r\n")
    if head.startswith(_XML_DECLARATIONS):
        return "application/xml"
    return None
