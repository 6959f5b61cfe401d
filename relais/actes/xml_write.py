"""Low-level writing of ACTES XML: prefixed elements and qualified attributes, Latin-1.

Every builder ends with ``serialize``, which validates the document against the
ACTES schema before returning its bytes: what Relais emits is schema-valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from lxml import etree

from relais.actes.codes import ACTES_NS, NSMAP, SCHEMA_LOCATION, XSI_NS
from relais.actes.text import fold_to_latin1, latin1_reasons
from relais.actes.xsd import assert_valid, hardened_parser
from relais.errors import Reason, ValidationError

ENCODING = "ISO-8859-1"
AttrValue = str | int | date


def qname(local: str, namespace: str = ACTES_NS) -> str:
    """Clark notation ``{namespace}local``."""
    return f"{{{namespace}}}{local}"


def _attr_text(value: AttrValue) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _set_attrs(element: etree._Element, attrs: Mapping[str, AttrValue]) -> None:
    for name, value in attrs.items():
        key = name if name.startswith("{") else qname(name)
        element.set(key, _attr_text(value))


def new_root(local: str, attrs: Mapping[str, AttrValue] | None = None) -> etree._Element:
    """A root ``actes:<local>`` declaring the actes, insee and xsi prefixes."""
    root = etree.Element(qname(local), nsmap=NSMAP)
    root.set(qname("schemaLocation", XSI_NS), SCHEMA_LOCATION)
    _set_attrs(root, attrs or {})
    return root


def sub(
    parent: etree._Element,
    local: str,
    text: str | date | None = None,
    attrs: Mapping[str, AttrValue] | None = None,
) -> etree._Element:
    """Append ``actes:<local>`` with optional text and ``actes:``-qualified attributes.

    Attribute names given in Clark notation (``{ns}name``) keep their namespace.
    """
    child = etree.SubElement(parent, qname(local))
    if text is not None:
        child.text = text.isoformat() if isinstance(text, date) else text
    _set_attrs(child, attrs or {})
    return child


def file_element(parent: etree._Element, local: str, file_name: str) -> etree._Element:
    """A ``FichierSigne`` element: ``<local><NomFichier>name</NomFichier></local>``."""
    element = sub(parent, local)
    sub(element, "NomFichier", file_name)
    return element


def free_text(value: str, field: str) -> str:
    """``value`` folded to Latin-1; ``ValidationError`` when characters remain outside it."""
    text = fold_to_latin1(value)
    reasons = latin1_reasons(text, field)
    if reasons:
        raise ValidationError(f"{field} cannot be written in ISO-8859-1", reasons=reasons)
    return text


def require(reasons: list[Reason], what: str) -> None:
    """Raise ``ValidationError`` when ``reasons`` is not empty."""
    if reasons:
        raise ValidationError(f"cannot build {what}: {reasons[0].message}", reasons=reasons)


def parse_trusted(raw: bytes, expected_root: str) -> etree._Element:
    """Parse a message to echo (hardened parser); it must have the expected root."""
    try:
        root = etree.fromstring(raw.lstrip(), hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise ValidationError(
            f"the {expected_root} to echo is not XML: {exc}",
            reasons=[Reason(expected_root, "format", str(exc))],
        ) from exc
    if etree.QName(root).localname != expected_root:
        raise ValidationError(
            f"expected a {expected_root} to echo, got {etree.QName(root).localname}",
            reasons=[Reason(expected_root, "root", "unexpected root element")],
        )
    return root


def copy_content(source: etree._Element, target: etree._Element) -> None:
    """Copy the attributes and children of ``source`` into ``target``."""
    for key, value in source.attrib.items():
        if key != qname("schemaLocation", XSI_NS):
            target.set(key, value)
    for child in source:
        if isinstance(child.tag, str):
            target.append(_deep_copy(child))


def _deep_copy(element: etree._Element) -> etree._Element:
    copy = etree.Element(element.tag, attrib={str(k): str(v) for k, v in element.attrib.items()})
    copy.text = element.text
    copy.tail = element.tail
    for child in element:
        if isinstance(child.tag, str):
            copy.append(_deep_copy(child))
    return copy


def serialize(root: etree._Element) -> bytes:
    """ISO-8859-1 bytes with an XML declaration, validated against the ACTES schema."""
    etree.indent(root, space="  ")
    xml = etree.tostring(root, xml_declaration=True, encoding=ENCODING)
    assert isinstance(xml, bytes)
    assert_valid(xml)
    return xml
