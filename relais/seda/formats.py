"""File formats: the PRONOM identifier (``FormatId``) and name of a file where known.

PRONOM ids are the UK National Archives' registry identifiers; only formats Relais
meets (PDF by its header's version, XML, plain text, zip, gzip, PNG, JPEG) are named.
An unknown format gets the MIME type alone, which SEDA allows (``FormatId`` is optional).
"""

from __future__ import annotations

import re

_PDF_VERSIONS: dict[str, str] = {
    "1.0": "fmt/14", "1.1": "fmt/15", "1.2": "fmt/16", "1.3": "fmt/17", "1.4": "fmt/18",
    "1.5": "fmt/19", "1.6": "fmt/20", "1.7": "fmt/276", "2.0": "fmt/1129",
}
_BY_MIME: dict[str, tuple[str, str]] = {
    "application/xml": ("fmt/101", "Extensible Markup Language"),
    "text/xml": ("fmt/101", "Extensible Markup Language"),
    "text/plain": ("x-fmt/111", "Plain Text File"),
    "application/zip": ("x-fmt/263", "ZIP Format"),
    "application/gzip": ("x-fmt/266", "GZIP Format"),
    "application/x-gzip": ("x-fmt/266", "GZIP Format"),
}
_PDF_HEADER = re.compile(rb"%PDF-(\d\.\d)")


def identify(mime_type: str, head: bytes) -> tuple[str | None, str | None]:
    """``(PRONOM id, format name)`` of a file from its MIME type and first bytes."""
    mime = mime_type.split(";", 1)[0].strip().lower()
    if mime == "application/pdf" or head.startswith(b"%PDF-"):
        match = _PDF_HEADER.match(head[:16])
        if match is None:
            return None, "Acrobat PDF"
        version = match.group(1).decode("ascii")
        return _PDF_VERSIONS.get(version), f"Acrobat PDF {version} - Portable Document Format"
    return _BY_MIME.get(mime, (None, None))


def extension(filename: str, mime_type: str) -> str:
    """The file's extension for its zip entry name (ASCII, at most 8 characters)."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix.isascii() and suffix.isalnum() and 0 < len(suffix) <= 8:
        return suffix
    return {"application/pdf": "pdf", "application/xml": "xml", "text/xml": "xml",
            "text/plain": "txt"}.get(mime_type.split(";", 1)[0].strip().lower(), "bin")
