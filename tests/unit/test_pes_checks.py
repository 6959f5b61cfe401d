"""PES_Aller reading and the checks before sending (signatures built here, digests real)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from lxml import etree

from relais.errors import ValidationError
from relais.pes.aller import read_aller
from relais.pes.checks import PesPolicy, check_aller, content_digest, duplicate_reasons
from relais.pes.codes import DSIG_NS
from relais.pes.xml_safe import XML_DOCTYPE, XML_TOO_LARGE, PesLimits, parse_pes

SAMPLE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes" / "samples" / (
    "pastell_PES_ex.xml"
)
SIREN = "243100633"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def _raw() -> bytes:
    assert SAMPLE.is_file(), f"reference sample missing: {SAMPLE} (../shared/reference)"
    return SAMPLE.read_bytes()


def _ds(parent: etree._Element, name: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{DSIG_NS}}}{name}", attrib)


def _signature(uri: str, digest: bytes, with_certificate: bool = True) -> etree._Element:
    signature = etree.Element(f"{{{DSIG_NS}}}Signature", nsmap={"ds": DSIG_NS})
    info = _ds(signature, "SignedInfo")
    _ds(info, "CanonicalizationMethod", Algorithm=C14N)
    _ds(info, "SignatureMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    reference = _ds(info, "Reference", URI=uri)
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=ENVELOPED)
    _ds(transforms, "Transform", Algorithm=C14N)
    _ds(reference, "DigestMethod", Algorithm=SHA256)
    _ds(reference, "DigestValue").text = base64.b64encode(digest).decode()
    _ds(signature, "SignatureValue").text = "c2lnbmF0dXJl"
    if with_certificate:
        data = _ds(_ds(signature, "KeyInfo"), "X509Data")
        _ds(data, "X509Certificate").text = "MIIBcertificate"
    return signature


def _serialise(root: etree._Element) -> bytes:
    raw = etree.tostring(root.getroottree(), xml_declaration=True, encoding="ISO-8859-1")
    assert isinstance(raw, bytes)
    return raw


def signed_whole_file(with_certificate: bool = True, unsigned: bytes | None = None) -> bytes:
    """``unsigned`` (default: the sample) signed as a whole (enveloped signature on the
    root, URI="")."""
    root = etree.fromstring(unsigned if unsigned is not None else _raw())
    digest = hashlib.sha256(etree.tostring(root.getroottree(), method="c14n")).digest()
    root.append(_signature("", digest, with_certificate))
    return _serialise(root)


def signed_bordereau() -> bytes:
    """The sample with its bordereau signed (URI="#<Bordereau Id>")."""
    root = etree.fromstring(_raw())
    bordereau = next(root.iter("Bordereau"))
    digest = hashlib.sha256(etree.tostring(bordereau, method="c14n")).digest()
    bordereau.append(_signature(f"#{bordereau.get('Id')}", digest))
    return _serialise(root)


def test_sample_passes_every_check() -> None:
    pes = read_aller(_raw())
    assert check_aller(pes, SIREN) == []
    assert not pes.signed


def test_unsigned_file_refused_when_policy_requires_a_signature() -> None:
    reasons = check_aller(read_aller(_raw()), SIREN, PesPolicy(signature_required=True))
    assert [(r.field, r.code) for r in reasons] == [("Signature", "pes_signature_missing")]


@pytest.mark.parametrize("maker", [signed_whole_file, signed_bordereau])
def test_signed_file_passes_and_digest_is_checked(maker: object) -> None:
    raw = maker()  # type: ignore[operator]
    pes = read_aller(raw)
    assert pes.signed
    assert all(r.digest_ok is True for s in pes.signatures for r in s.references)
    assert check_aller(pes, SIREN, PesPolicy(signature_required=True)) == []


@pytest.mark.parametrize("maker", [signed_whole_file, signed_bordereau])
def test_signed_file_with_tampered_body_is_refused(maker: object) -> None:
    raw = maker()  # type: ignore[operator]
    tampered = raw.replace(b'<MtHT V="55.22"/>', b'<MtHT V="5522.00"/>')
    assert tampered != raw
    reasons = check_aller(read_aller(tampered), SIREN, PesPolicy(signature_required=True))
    assert [r.code for r in reasons] == ["pes_signature_tampered"]
    assert reasons[0].field.endswith("/Signature")


def test_broken_signature_structure_is_refused() -> None:
    reasons = check_aller(read_aller(signed_whole_file(with_certificate=False)), SIREN)
    assert [r.code for r in reasons] == ["pes_signature_structure"]
    assert "X509Certificate" in reasons[0].message


def test_header_refusals_name_their_element() -> None:
    raw = (_raw().replace(b'<IdColl V="24310063300011"/>', b'<IdColl V="24310063300012"/>')
           .replace(b'<CodCol V="100"/>', b'<CodCol V="1000"/>')
           .replace(b'<IdPost V="031007"/>', b'<IdPost V="31007"/>')
           .replace(b'<TypFic V="PESALR2"/>', b'<TypFic V="PESORMC"/>'))
    reasons = check_aller(read_aller(raw), SIREN)
    assert {(r.field, r.code) for r in reasons} == {
        ("EnTetePES/IdColl", "checksum"),
        ("EnTetePES/CodCol", "pes_codcol"),
        ("EnTetePES/IdPost", "pes_idpost"),
        ("Enveloppe/Parametres/TypFic", "pes_typfic"),
    }


def test_idcoll_of_another_member_is_refused() -> None:
    reasons = check_aller(read_aller(_raw()), "552100554")
    assert [(r.field, r.code) for r in reasons] == [("EnTetePES/IdColl", "pes_idcoll_not_member")]


def test_missing_nomfic_and_empty_file_are_refused() -> None:
    raw = _raw().replace(b'<NomFic V="SICOVAL201512104"/>', b"")
    start, end = raw.index(b"<PES_DepenseAller>"), raw.index(b"</PES_DepenseAller>")
    raw = raw[:start] + raw[end + len(b"</PES_DepenseAller>"):]
    codes = {r.code for r in check_aller(read_aller(raw), SIREN)}
    assert codes == {"pes_nomfic_missing", "pes_empty"}


def test_duplicates_by_content_and_by_nomfic() -> None:
    raw = _raw()
    pes = read_aller(raw)
    digest = content_digest(raw)
    assert [r.code for r in duplicate_reasons(pes, digest, [], [digest])] \
        == ["pes_duplicate_content"]
    assert [r.code for r in duplicate_reasons(pes, "other", ["SICOVAL201512104"], [])] == [
        "pes_duplicate_nomfic"]
    assert duplicate_reasons(pes, "other", ["x"], ["y"]) == []


def test_entities_and_doctype_are_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
            b'<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">&a;'
            b"</n:PES_Aller>")
    with pytest.raises(ValidationError) as caught:
        parse_pes(bomb)
    assert caught.value.reasons[0].code == XML_DOCTYPE


def test_size_and_tag_limits() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_pes(_raw(), PesLimits(max_bytes=1000))
    assert caught.value.reasons[0].code == XML_TOO_LARGE
    with pytest.raises(ValidationError) as caught:
        parse_pes(_raw(), PesLimits(max_elements=10))
    assert caught.value.reasons[0].code == XML_TOO_LARGE


def test_not_a_pes_aller() -> None:
    with pytest.raises(ValidationError) as caught:
        read_aller(b"<root/>")
    assert caught.value.reasons[0].code == "pes_not_aller"
    with pytest.raises(ValidationError):
        read_aller(b"<not xml")
