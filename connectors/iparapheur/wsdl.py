"""Load i-Parapheur's WSDL once per location, the ``xmlmime`` import resolved locally.

The WSDL imports ``http://www.w3.org/2005/05/xmlmime`` by URL (its ``TypeDoc`` restricts
``xmime:base64Binary`` and requires ``xmime:contentType``). Relais never fetches it from
w3.org: :data:`XMLMIME_SCHEMA` states what the W3C note "Describing Media Content of Binary
Data in XML" (2005) defines, and the loading transport answers that URL from memory.

Parsing the WSDL takes a fraction of a second and some memory: :func:`load_wsdl` keeps
one parsed :class:`zeep.wsdl.Document` per location for the life of the process, shared
by every member's client (each member has its own httpx client; the contract is the same).
"""

from __future__ import annotations

import threading
from pathlib import Path

import zeep
from zeep.wsdl import Document

from relais.errors import ConfigurationError

NAMESPACE = "http://www.adullact.org/spring-ws/iparapheur/1.0"
XMLMIME_NAMESPACE = "http://www.w3.org/2005/05/xmlmime"

XMLMIME_SCHEMA = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:xmime="http://www.w3.org/2005/05/xmlmime"
           targetNamespace="http://www.w3.org/2005/05/xmlmime">
  <xs:attribute name="contentType">
    <xs:simpleType>
      <xs:restriction base="xs:string"><xs:minLength value="3"/></xs:restriction>
    </xs:simpleType>
  </xs:attribute>
  <xs:attribute name="expectedContentTypes" type="xs:string"/>
  <xs:complexType name="base64Binary">
    <xs:simpleContent>
      <xs:extension base="xs:base64Binary">
        <xs:attribute ref="xmime:contentType"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:complexType name="hexBinary">
    <xs:simpleContent>
      <xs:extension base="xs:hexBinary">
        <xs:attribute ref="xmime:contentType"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
</xs:schema>
"""
"""The W3C ``xmlmime`` schema's declarations (attribute ``contentType``, at least 3
characters; attribute ``expectedContentTypes``; ``base64Binary``/``hexBinary`` carrying
an optional ``contentType``)."""

LOCAL_DOCUMENTS: dict[str, bytes] = {XMLMIME_NAMESPACE: XMLMIME_SCHEMA}


class _LocalImportsTransport(zeep.Transport):  # type: ignore[misc]  # zeep is untyped
    """zeep's loading transport, answering the W3C imports from memory."""

    def load(self, url: str) -> bytes:
        local = LOCAL_DOCUMENTS.get(url.rstrip("/"))
        if local is not None:
            return local
        content: bytes = super().load(url)
        return content


_documents: dict[str, Document] = {}
_lock = threading.Lock()


def load_wsdl(location: str | Path) -> Document:
    """The parsed WSDL at ``location`` (a path or URL), parsed on first use then shared.

    Blocking (file or network, then parsing): call it off the event loop or at start-up.
    Raises :class:`ConfigurationError` when the WSDL cannot be read or parsed.
    """
    key = str(location)
    with _lock:
        cached = _documents.get(key)
        if cached is not None:
            return cached
        try:
            # External references allowed while loading: the one import (xmlmime) is
            # answered from memory by the transport; replies are parsed with settings().
            loading = zeep.Settings(strict=False, forbid_dtd=True, forbid_entities=True)
            document = Document(key, _LocalImportsTransport(timeout=30), settings=loading)
        except Exception as exc:  # zeep raises many types (IO, XML, lookup) for a bad WSDL
            raise ConfigurationError(
                f"cannot load the i-Parapheur WSDL {key}: {type(exc).__name__}: {exc}"
            ) from exc
        _documents[key] = document
        return document


def settings() -> zeep.Settings:
    """zeep settings for i-Parapheur: no DTD, no entities, no external references in replies;
    lenient on extra elements (i-Parapheur 5 adds some the 3.x WSDL does not declare)."""
    return zeep.Settings(
        strict=False,
        xml_huge_tree=True,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
