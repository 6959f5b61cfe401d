"""Hostile SIPs at the sandbox archive's door: entry-count, size and path limits, a
compression bomb, an XML entity bomb in the manifest. Each ends KO with the failing check,
nothing is expanded past the caps."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from sandbox.archive.checks import check_sip
from sandbox.archive.config import ArchiveConfig

NS = "fr:gouv:culture:archivesdefrance:seda:v2.1"


def _zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_too_many_entries(tmp_path: Path) -> None:
    sip = _zip(tmp_path / "many.zip", {f"content/{i}": b"" for i in range(30)})
    verdict = check_sip(sip, ArchiveConfig(max_entries=20))
    assert verdict.status == "KO"
    assert verdict.checks[0].code == "CHECK_CONTAINER" and "30 entries" in verdict.checks[0].message


def test_absolute_and_parent_paths(tmp_path: Path) -> None:
    for name in ("/etc/passwd", "content/../../x", "C:\\\\evil"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(zipfile.ZipInfo(name), b"x")
        sip = tmp_path / "escape.zip"
        sip.write_bytes(buffer.getvalue())
        verdict = check_sip(sip, ArchiveConfig())
        assert verdict.status == "KO", name
        assert verdict.checks[0].code == "CHECK_CONTAINER"


def test_a_compression_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    manifest = (f'<ArchiveTransfer xmlns="{NS}"/>').encode()
    sip = _zip(tmp_path / "bomb.zip", {"manifest.xml": manifest + b" " * 5_000_000},
               zipfile.ZIP_DEFLATED)
    assert sip.stat().st_size < 100_000
    verdict = check_sip(sip, ArchiveConfig(max_manifest_bytes=1_000_000))
    assert verdict.status == "KO"
    assert verdict.checks[-1].code == "CHECK_SEDA" and "over 1000000 bytes" in \
        verdict.checks[-1].message


def test_an_entity_bomb_in_the_manifest_is_not_expanded(tmp_path: Path) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            f'<ArchiveTransfer xmlns="{NS}"><Comment>&c;</Comment></ArchiveTransfer>').encode()
    verdict = check_sip(_zip(tmp_path / "entities.zip", {"manifest.xml": bomb}), ArchiveConfig())
    assert verdict.status == "KO"
    assert verdict.checks[-1].code == "CHECK_SEDA" and "DOCTYPE" in verdict.checks[-1].message


def test_a_uri_outside_the_zip_is_refused(tmp_path: Path) -> None:
    from relais.seda.model import SedaVersion
    from relais.seda.package import DocumentSpec, UnitSpec
    from tests.conformance.seda_helpers import MemoryBlobs
    from tests.conformance.test_seda_manifests import PDF, _prepare

    blobs = MemoryBlobs()
    sip_spec = _prepare(SedaVersion.V2_1, (UnitSpec("x", documents=(
        DocumentSpec(blobs.add(PDF), "a.pdf", "application/pdf"),)),), blobs)
    manifest = sip_spec.manifest.replace(b"content/ID1.pdf", b"../../etc/passwd")
    verdict = check_sip(_zip(tmp_path / "uri.zip", {"manifest.xml": manifest,
                                                   "content/ID1.pdf": PDF}), ArchiveConfig())
    assert verdict.status == "KO"
    assert [c.code for c in verdict.checks if c.outcome == "KO"] == ["CHECK_DATAOBJECTPACKAGE"]
