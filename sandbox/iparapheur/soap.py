"""SOAP 1.1 envelopes as i-Parapheur's JAX-WS stack writes them, and request parsing.

Answers follow i-Parapheur 5's own SOAP test expectations
(megalis-bretagne/parapheur-v5 ``src/test/resources/lib/soap/schemas/``): an ``S:``
envelope, the response element in the default namespace
``http://www.adullact.org/spring-ws/iparapheur/1.0`` with ``xmime`` declared, children
unprefixed, ``Content-Type: text/xml;charset=utf-8``. Faults are SOAP 1.1 faults
(``faultcode`` ``S:Client`` or ``S:Server``, ``faultstring``) with HTTP 500.

Requests are parsed with lxml without DTDs, entities or network access, off the event
loop, after a size check.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from lxml import etree

NS = "http://www.adullact.org/spring-ws/iparapheur/1.0"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XMIME = "http://www.w3.org/2005/05/xmlmime"
CONTENT_TYPE = "text/xml;charset=utf-8"


class SoapClientError(Exception):
    """The request is not a SOAP envelope i-Parapheur can read (a ``S:Client`` fault)."""


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def parse_request(body: bytes) -> etree._Element:
    """The first element of the SOAP body; SoapClientError for anything else."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SoapClientError(f"Unmarshalling Error: {exc}") from exc
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise SoapClientError("Unmarshalling Error: DOCTYPE is not allowed")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapClientError("Unmarshalling Error: not a SOAP 1.1 envelope")
    body_element = root.find(f"{{{SOAP_ENV}}}Body")
    if body_element is None or len(body_element) == 0:
        raise SoapClientError("Unmarshalling Error: empty SOAP body")
    return body_element[0]


def text(element: etree._Element | None, name: str) -> str | None:
    """The text of child ``name`` (None when absent or ``xsi:nil``)."""
    if element is None:
        return None
    child = element.find(q(name))
    if child is None or child.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true":
        return None
    return (child.text or "").strip()


def binary(element: etree._Element | None) -> tuple[bytes, str] | None:
    """A ``TypeDoc``: decoded bytes and ``xmime:contentType``; SoapClientError if not base64."""
    if element is None or element.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true":
        return None
    try:
        content = base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SoapClientError(f"Unmarshalling Error: {element.tag} is not base64") from exc
    return content, element.get(f"{{{XMIME}}}contentType") or "application/octet-stream"


def response(name: str, children: Iterable[etree._Element]) -> bytes:
    """A response envelope around ``<name>`` and its children."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"S": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    element = etree.SubElement(
        body, q(name), nsmap={None: NS, "xmime": XMIME}  # type: ignore[dict-item]
    )
    element.extend(children)
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return data


def fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 fault (``code``: ``Client`` or ``Server``)."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"S": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    element = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(element, "faultcode").text = f"S:{code}"
    etree.SubElement(element, "faultstring").text = message
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return data


def el(name: str, value: str | None = None, *children: etree._Element) -> etree._Element:
    element = etree.Element(q(name))
    if value is not None:
        element.text = value
    element.extend(children)
    return element


def doc(name: str, content: bytes, content_type: str) -> etree._Element:
    element = el(name, base64.b64encode(content).decode("ascii"))
    element.set(f"{{{XMIME}}}contentType", content_type)
    return element


def message_retour(code: str, message: str) -> etree._Element:
    """``MessageRetour``: ``severite`` INFO with OK, ERROR with KO (as i-Parapheur 5)."""
    return el(
        "MessageRetour",
        None,
        el("codeRetour", code),
        el("message", message),
        el("severite", "INFO" if code == "OK" else "ERROR"),
    )
