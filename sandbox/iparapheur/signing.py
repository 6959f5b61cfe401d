"""The sandbox's signatures: a real detached CMS (PKCS#7) over the document, by a throwaway
signer certificate; for XML, the document with an enveloped ``ds:Signature`` element.

i-Parapheur returns ``SignatureDocPrincipal`` (``application/x-pkcs7-signature``) for a PDF
signed in detached mode and ``FichierPES`` (the signed XML) for a PES (Pastell
``IParapheur::getSignature``). The sandbox's XML signature is **not** a valid XAdES: only
its place and shape are imitated.
"""

from __future__ import annotations

import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from lxml import etree

XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


@lru_cache(maxsize=1)
def _signer() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "Anne Maire (sandbox i-Parapheur)"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Relais sandbox"),
    ])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def detached_cms(content: bytes) -> bytes:
    """A DER detached CMS signature of ``content``."""
    certificate, key = _signer()
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
    )


def signed_xml(content: bytes) -> bytes:
    """``content`` with a ``ds:Signature`` appended to its root (shape only, not XAdES)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True)
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError:
        return content
    signature = etree.SubElement(root, f"{{{XMLDSIG}}}Signature", nsmap={"ds": XMLDSIG})
    etree.SubElement(signature, f"{{{XMLDSIG}}}SignatureValue").text = "c2FuZGJveA=="
    data = etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")
    return data if isinstance(data, bytes) else data.encode("iso-8859-1")


BORDEREAU = b"%PDF-1.4\n% sandbox i-Parapheur: bordereau de signature\n%%EOF\n"
