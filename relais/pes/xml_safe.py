"""Bounded, hardened parsing of a PES file (hostile input until read).

A PES_Aller carries its pièces justificatives inside (base64), so it may be large:
S²LOW refuses more than 128 MiB at import, and so does :class:`PesLimits` by default.
Before parsing, a scan at C speed refuses a file past ``max_bytes``, with more than
``max_elements`` tags, with a tag longer than ``max_markup_bytes``, or with any
document type declaration (``<!DOCTYPE``): a PES never has one, so no entity can be
declared, let alone expanded. The parser itself loads no DTD, resolves no entity and
never touches the network. ``huge_tree`` is on because one base64 pièce justificative
may exceed libxml2's 10 MB text-node limit; the byte cap above bounds the whole.

The whole tree is kept (a signature's digest needs it): parse in a worker thread
(:func:`parse_pes_async`) when the file may be big, never on the event loop.

Errors are :class:`~relais.errors.ValidationError` with one reason on the ``xml``
field; its code is one of the ``XML_*`` constants (``XML_TOO_LARGE`` for the limits).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from lxml import etree

from relais.errors import Reason, ValidationError

XML_EMPTY = "pes_xml_empty"
XML_UNREADABLE = "pes_xml_unreadable"
XML_TOO_LARGE = "pes_xml_too_large"
XML_DOCTYPE = "pes_xml_doctype"

_SCAN_CHUNK = 1024 * 1024
_DOCTYPE_RE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


@dataclass(frozen=True)
class PesLimits:
    """Bounds of one PES parse (see the module docstring)."""

    max_bytes: int = 128 * 1024 * 1024
    max_elements: int = 1_000_000
    """Tags (``<``) in the file; the tree costs about 270 bytes of memory per tag."""
    max_markup_bytes: int = 64 * 1024


def _refuse(code: str, message: str) -> ValidationError:
    return ValidationError(message, reasons=[Reason("xml", code, message)])


def _scan(data: bytes, limits: PesLimits) -> None:
    if len(data) > limits.max_bytes:
        raise _refuse(XML_TOO_LARGE, f"{len(data)} bytes, more than the {limits.max_bytes} read")
    tags = data.count(b"<")
    if tags > limits.max_elements:
        raise _refuse(XML_TOO_LARGE, f"more than {limits.max_elements} tags")
    long_markup = re.compile(rb"<[^>]{%d}" % limits.max_markup_bytes)
    if long_markup.search(data):
        raise _refuse(
            XML_TOO_LARGE,
            f"a tag, comment or declaration longer than {limits.max_markup_bytes} bytes",
        )
    if _DOCTYPE_RE.search(data):
        raise _refuse(XML_DOCTYPE, "a PES file has no document type declaration (DTD refused)")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=True, remove_blank_text=False,
    )


def parse_pes(raw: bytes, limits: PesLimits | None = None) -> etree._Element:
    """The root element of ``raw``, parsed within ``limits`` (raises ``ValidationError``)."""
    limits = limits or PesLimits()
    data = raw.lstrip(b" \t\r\n")
    if not data:
        raise _refuse(XML_EMPTY, "empty file where a PES file was expected")
    _scan(data, limits)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise _refuse(XML_UNREADABLE, f"not readable XML: {exc}") from exc
    return root


async def parse_pes_async(raw: bytes, limits: PesLimits | None = None) -> etree._Element:
    """:func:`parse_pes` in a worker thread (the event loop keeps running)."""
    return await asyncio.to_thread(parse_pes, raw, limits)


def local_name(element: etree._Element) -> str:
    """The element's name without namespace ('' for comments and PIs)."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def child(element: etree._Element | None, name: str) -> etree._Element | None:
    """First child named ``name`` (any namespace)."""
    if element is None:
        return None
    return next((c for c in element if local_name(c) == name), None)


def children(element: etree._Element | None, name: str) -> list[etree._Element]:
    """Every child named ``name`` (any namespace)."""
    if element is None:
        return []
    return [c for c in element if local_name(c) == name]


def value(element: etree._Element | None, *path: str) -> str | None:
    """The ``V`` attribute of the element at ``path`` below ``element``, stripped."""
    for name in path:
        element = child(element, name)
    if element is None:
        return None
    found = element.get("V")
    return None if found is None else str(found).strip()
