"""XML-DSig signatures inside a PES file: their structure, and each Reference's digest.

What is verified, for every ``ds:Signature`` found anywhere in the file:

- the structure: ``SignedInfo`` with ``CanonicalizationMethod``, ``SignatureMethod`` and at
  least one ``Reference`` (each with ``DigestMethod`` and a base64 ``DigestValue``), a
  non-empty ``SignatureValue`` and an ``X509Certificate`` in ``KeyInfo``;
- for each same-document ``Reference`` (``URI=""`` or ``URI="#Id"``): the referenced
  element exists, and its digest (transforms enveloped-signature, inclusive or exclusive
  C14N 1.0, with or without comments; SHA-1/224/256/384/512) equals ``DigestValue``.
  A body changed after signing therefore fails here.

What is **not** verified: the ``SignatureValue`` itself (the RSA/ECDSA signature over
``SignedInfo``), the certificate chain, its validity at ``SigningTime`` and XAdES
policies. The comptable's Hélios (and S²LOW, per its source) checks those; Relais
refuses a broken structure or a tampered body before sending, not a bad key.
A Reference with a transform or algorithm not listed above is reported as not
checkable (``digest_ok`` is ``None``), never as valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from lxml import etree

from relais.pes.codes import DSIG_NS, XADES_NS
from relais.pes.xml_safe import child, children, local_name

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N = {
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (False, False),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (False, True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": (True, False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (True, True),
}
_DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}


@dataclass(frozen=True)
class ReferenceCheck:
    """One ``Reference`` of a signature and what its digest check found."""

    uri: str
    target_found: bool
    digest_ok: bool | None
    """True when the digest matches, False when it does not, None when not checkable."""
    detail: str = ""


@dataclass(frozen=True)
class SignatureInfo:
    """One ``ds:Signature``: where it sits, what it references, what is wrong with it."""

    parent: str
    """Local name of the signed element holding it (``PES_Aller``, ``Bordereau``…)."""
    parent_id: str | None
    references: tuple[ReferenceCheck, ...]
    has_certificate: bool
    signing_time: str | None
    problems: tuple[str, ...] = field(default=())
    """Structural problems (empty when the structure is intact)."""

    @property
    def intact(self) -> bool:
        """Structure complete and no Reference digest mismatching."""
        return not self.problems and all(r.digest_ok is not False for r in self.references)


def _ds(element: etree._Element | None, name: str) -> etree._Element | None:
    found = child(element, name)
    if found is not None and etree.QName(found).namespace == DSIG_NS:
        return found
    return None


def _text(element: etree._Element | None) -> str:
    return "" if element is None else "".join(str(t) for t in element.itertext()).strip()


def _find_by_id(root: etree._Element, ident: str) -> etree._Element | None:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for key in ("Id", "ID", "id"):
            if element.get(key) == ident:
                return element
    return None


def _c14n_without(
    target: etree._Element, signature: etree._Element | None, exclusive: bool,
    comments: bool, prefixes: list[str] | None,
) -> bytes:
    """C14N of ``target`` with ``signature`` removed (enveloped-signature), tree restored."""
    if signature is None or not _is_inside(signature, target):
        return etree.tostring(
            target, method="c14n", exclusive=exclusive, with_comments=comments,
            inclusive_ns_prefixes=prefixes,
        )
    parent = signature.getparent()
    assert parent is not None
    index = parent.index(signature)
    tail = signature.tail
    previous = signature.getprevious()
    saved_text = parent.text
    saved_prev_tail = previous.tail if previous is not None else None
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    signature.tail = None
    parent.remove(signature)
    try:
        return etree.tostring(
            target, method="c14n", exclusive=exclusive, with_comments=comments,
            inclusive_ns_prefixes=prefixes,
        )
    finally:
        parent.insert(index, signature)
        signature.tail = tail
        if previous is not None:
            previous.tail = saved_prev_tail
        else:
            parent.text = saved_text


def _is_inside(node: etree._Element, ancestor: etree._Element) -> bool:
    current: etree._Element | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = current.getparent()
    return False


def _check_reference(
    root: etree._Element, signature: etree._Element, reference: etree._Element
) -> tuple[ReferenceCheck, list[str]]:
    uri = reference.get("URI")
    problems: list[str] = []
    digest_method = _ds(reference, "DigestMethod")
    digest_text = _text(_ds(reference, "DigestValue"))
    algorithm = digest_method.get("Algorithm") if digest_method is not None else None
    if algorithm is None:
        problems.append("a Reference has no DigestMethod")
    try:
        expected = base64.b64decode(digest_text, validate=True) if digest_text else b""
    except (binascii.Error, ValueError):
        expected = b""
    if not expected:
        problems.append("a Reference has no readable base64 DigestValue")
    if uri is None or (uri and not uri.startswith("#")):
        return ReferenceCheck(uri or "", False, None, "not a same-document reference"), problems
    target = root if uri == "" else _find_by_id(root, uri[1:])
    if target is None:
        problems.append(f"Reference {uri!r} names no element of the file")
        return ReferenceCheck(uri, False, False, "referenced element not found"), problems
    hash_name = _DIGESTS.get(algorithm or "")
    if hash_name is None or not expected:
        return ReferenceCheck(uri, True, None, f"digest algorithm {algorithm!r} not checked"), (
            problems
        )
    enveloped = False
    exclusive, comments = False, False
    prefixes: list[str] | None = None
    for transform in children(_ds(reference, "Transforms"), "Transform"):
        name = transform.get("Algorithm") or ""
        if name == ENVELOPED:
            enveloped = True
        elif name in _C14N:
            exclusive, comments = _C14N[name]
            inclusive = child(transform, "InclusiveNamespaces")
            if inclusive is not None and inclusive.get("PrefixList"):
                prefixes = str(inclusive.get("PrefixList")).split()
        else:
            return ReferenceCheck(uri, True, None, f"transform {name!r} not checked"), problems
    octets = _c14n_without(target, signature if enveloped else None, exclusive, comments,
                           prefixes)
    actual = hashlib.new(hash_name, octets).digest()
    if actual != expected:
        return ReferenceCheck(uri, True, False, "digest does not match the content"), problems
    return ReferenceCheck(uri, True, True), problems


def _inspect(root: etree._Element, signature: etree._Element) -> SignatureInfo:
    problems: list[str] = []
    signed_info = _ds(signature, "SignedInfo")
    references: list[ReferenceCheck] = []
    if signed_info is None:
        problems.append("no SignedInfo")
    else:
        if _ds(signed_info, "CanonicalizationMethod") is None:
            problems.append("SignedInfo has no CanonicalizationMethod")
        if _ds(signed_info, "SignatureMethod") is None:
            problems.append("SignedInfo has no SignatureMethod")
        found = [r for r in children(signed_info, "Reference")]
        if not found:
            problems.append("SignedInfo has no Reference")
        for reference in found:
            check, more = _check_reference(root, signature, reference)
            references.append(check)
            problems.extend(more)
    if not _text(_ds(signature, "SignatureValue")):
        problems.append("no SignatureValue")
    certificate = next(
        (e for e in signature.iter(f"{{{DSIG_NS}}}X509Certificate") if _text(e)), None
    )
    if certificate is None:
        problems.append("no X509Certificate in KeyInfo")
    signing_time = next(
        (_text(e) for e in signature.iter(f"{{{XADES_NS}}}SigningTime")), None
    )
    parent = signature.getparent()
    return SignatureInfo(
        parent=local_name(parent) if parent is not None else "",
        parent_id=(parent.get("Id") if parent is not None else None),
        references=tuple(references),
        has_certificate=certificate is not None,
        signing_time=signing_time,
        problems=tuple(problems),
    )


def inspect_signatures(root: etree._Element) -> list[SignatureInfo]:
    """Every ``ds:Signature`` of the file, in document order, inspected."""
    return [_inspect(root, s) for s in list(root.iter(f"{{{DSIG_NS}}}Signature"))]
