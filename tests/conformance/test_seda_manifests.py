"""Manifests Relais builds validate against the official SEDA 2.1 and 2.2 schemas read
from ``../shared/reference/seda`` (never copied), and the SIP zip holds what they say."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from datetime import UTC, date, datetime

import pytest
from lxml import etree

from relais.errors import ValidationError
from relais.seda.model import Keyword, Rule, SedaVersion
from relais.seda.package import DocumentSpec, Sip, UnitSpec, prepare_sip
from relais.seda.xsd import assert_valid, validation_errors
from tests.conformance.seda_helpers import SEDA_REFERENCE, MemoryBlobs, spec

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
VERSIONS = [SedaVersion.V2_1, SedaVersion.V2_2]
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _prepare(version: SedaVersion, units: tuple[UnitSpec, ...], blobs: MemoryBlobs) -> Sip:
    return asyncio.run(prepare_sip(spec(version, units), blobs.open, now=NOW))


def _zip(sip: Sip) -> zipfile.ZipFile:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in sip.stream()])

    data = asyncio.run(collect())
    assert len(data) == sip.length
    return zipfile.ZipFile(io.BytesIO(data))


def _ns(version: SedaVersion) -> dict[str, str]:
    return {"s": version.namespace}


def test_the_reference_schemas_are_beside_the_repository() -> None:
    assert (SEDA_REFERENCE / "seda-2.1" / "seda-2.1-main.xsd").is_file()
    assert (SEDA_REFERENCE / "seda-2.2" / "seda-2.2-main.xsd").is_file()


@pytest.mark.parametrize("version", VERSIONS)
def test_one_file(version: SedaVersion) -> None:
    blobs = MemoryBlobs()
    sha = blobs.add(PDF)
    unit = UnitSpec("Délibération 2026-042", documents=(
        DocumentSpec(sha, "deliberation.pdf", "application/pdf"),))
    sip = _prepare(version, (unit,), blobs)
    assert validation_errors(sip.manifest, version) == []
    root = etree.fromstring(sip.manifest)
    digest = root.find(".//s:BinaryDataObject/s:MessageDigest", _ns(version))
    assert digest is not None and digest.get("algorithm") == "SHA-512"
    assert digest.text == hashlib.sha512(PDF).hexdigest()
    assert root.findtext(".//s:FormatId", namespaces=_ns(version)) == "fmt/276"
    assert root.findtext(".//s:Size", namespaces=_ns(version)) == str(len(PDF))
    assert root.findtext(".//s:OriginatingAgencyIdentifier", namespaces=_ns(version)) == "212102313"
    archive = _zip(sip)
    assert archive.namelist() == ["manifest.xml", "content/ID1.pdf"]
    assert archive.read("content/ID1.pdf") == PDF
    assert archive.read("manifest.xml") == sip.manifest


@pytest.mark.parametrize("version", VERSIONS)
def test_two_hundred_files(version: SedaVersion) -> None:
    blobs = MemoryBlobs()
    docs = tuple(DocumentSpec(blobs.add(b"piece %d\n" % i), f"piece-{i}.txt", "text/plain")
                 for i in range(200))
    sip = _prepare(version, (UnitSpec("Dossier", level="File", documents=docs),), blobs)
    assert validation_errors(sip.manifest, version) == []
    root = etree.fromstring(sip.manifest)
    assert len(root.findall(".//s:BinaryDataObject", _ns(version))) == 200
    assert len(root.findall(".//s:DataObjectReference", _ns(version))) == 200
    archive = _zip(sip)
    assert len(archive.namelist()) == 201
    assert archive.read("content/ID200.txt") == b"piece 199\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_non_ascii_names_and_titles(version: SedaVersion) -> None:
    blobs = MemoryBlobs()
    sha = blobs.add(PDF)
    unit = UnitSpec(
        "Arrêté n°2026-17 portant réglementation de la circulation — Œuvre « été »",
        description="Délibération relative à l'élaboration du schéma d'aménagement",
        keywords=(Keyword("Côte-d'Or", "geogname"), Keyword("voirie", "subject")),
        documents=(DocumentSpec(sha, "arrêté n°17 — œuvre.pdf", "application/pdf"),),
    )
    sip = _prepare(version, (unit,), blobs)
    assert validation_errors(sip.manifest, version) == []
    root = etree.fromstring(sip.manifest)
    assert root.findtext(".//s:Filename", namespaces=_ns(version)) == "arrêté n°17 — œuvre.pdf"
    assert "Œuvre « été »" in (root.findtext(".//s:Title", namespaces=_ns(version)) or "")
    # the zip entry is ASCII, the original name lives in FileInfo
    assert _zip(sip).namelist()[1] == "content/ID1.pdf"


@pytest.mark.parametrize("version", VERSIONS)
def test_nested_units_with_rules_and_dates(version: SedaVersion) -> None:
    blobs = MemoryBlobs()
    leaf = UnitSpec("Pièce", documents=(DocumentSpec(blobs.add(b"a"), "a.xml", "text/xml"),),
                    access_rule=Rule("ACC-00002", date(2026, 1, 1)))
    middle = UnitSpec("Sous-dossier", level="SubGrp", children=(leaf, leaf),
                      start_date=date(2025, 1, 1), end_date=date(2026, 1, 1))
    top = UnitSpec("Dossier", level="RecordGrp", created=date(2026, 2, 3),
                   document_type="Dossier", children=(middle,))
    transfer = spec(version, (top,))
    transfer = type(transfer)(**{**transfer.__dict__,
                                 "access_rule": Rule("ACC-00001", date(2026, 1, 1)),
                                 "appraisal_rule": Rule("APP-00001", date(2026, 1, 1)),
                                 "archival_profile": "PR-000001"})
    sip = asyncio.run(prepare_sip(transfer, blobs.open, now=NOW))
    assert validation_errors(sip.manifest, version) == []
    root = etree.fromstring(sip.manifest)
    depth = root.findall(".//s:ArchiveUnit/s:ArchiveUnit/s:ArchiveUnit", _ns(version))
    assert len(depth) == 2
    assert root.findtext(".//s:AppraisalRule/s:FinalAction", namespaces=_ns(version)) == "Keep"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_broken_manifest_is_refused_with_the_schema_error(version: SedaVersion) -> None:
    blobs = MemoryBlobs()
    sip = _prepare(version, (UnitSpec("x", documents=(
        DocumentSpec(blobs.add(PDF), "a.pdf", "application/pdf"),)),), blobs)
    broken = sip.manifest.replace(b' algorithm="SHA-512"', b"")
    with pytest.raises(ValidationError) as caught:
        assert_valid(broken, version)
    assert "algorithm" in caught.value.message
    assert caught.value.code == "seda_manifest_invalid"


def test_the_sample_fails_only_on_vitams_textcontent_and_21_refuses_a_22_manifest() -> None:
    # protocols.md §3.4: Vitam's sample uses TextContent, a 2.2 element, in a 2.1 transfer
    sample = (SEDA_REFERENCE / "samples" / "seda2_1ArchiveTransfer.xml").read_bytes()
    errors = validation_errors(sample, SedaVersion.V2_1)
    assert len(errors) == 1 and "TextContent" in errors[0]
    blobs = MemoryBlobs()
    sip = _prepare(SedaVersion.V2_2, (UnitSpec("x"),), blobs)
    assert validation_errors(sip.manifest, SedaVersion.V2_1) != []
