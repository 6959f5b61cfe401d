"""What the sandbox archive checks in a SIP, as Vitam's ingest workflow does (steps read
in ProgrammeVitam/vitam's ingest workflow: STP_INGEST_CONTROL_SIP, then
STP_OG_CHECK_AND_TRANSFORME). Runs in a thread on a spooled file: never the SIP in memory.

- The container: a zip read safely: no absolute path, no ``..``, at most ``max_entries``
  entries and ``max_entry_bytes`` per entry (uncompressed, and read with a counting cap,
  never trusting the declared size). Failure: KO ``CHECK_CONTAINER`` (early: the reply
  cannot name the transfer, so ``MessageRequestIdentifier`` is empty).
- The manifest: ``manifest.xml`` present, XML with no DTD or entities, valid against the
  official schema of its namespace (SEDA 2.1 or 2.2). Failure: KO ``CHECK_SEDA`` (early).
- Each ``BinaryDataObject``: its ``Uri`` is an entry of the zip (KO
  ``CHECK_DATAOBJECTPACKAGE``); its ``MessageDigest`` matches the content with the
  declared algorithm (KO ``CHECK_DIGEST``); its ``Size`` matches (WARNING
  ``CHECK_OBJECT_SIZE``: Vitam corrects the size and goes on).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lxml import etree

from relais.actes.xsd import hardened_parser
from relais.seda.model import SedaVersion
from relais.seda.xsd import validation_errors
from sandbox.archive.config import ArchiveConfig

_ALGORITHMS = {"SHA-512": "sha512", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-1": "sha1",
               "MD5": "md5"}


@dataclass(frozen=True)
class Check:
    code: str
    outcome: str  # OK, WARNING, KO
    message: str


@dataclass
class Verdict:
    """The result of the checks: what the ATR says."""

    checks: list[Check] = field(default_factory=list)
    message_identifier: str | None = None
    archival_agreement: str | None = None
    archival_agency: str | None = None
    transferring_agency: str | None = None
    version: SedaVersion | None = None
    units: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        outcomes = {check.outcome for check in self.checks}
        return "KO" if "KO" in outcomes else "WARNING" if "WARNING" in outcomes else "OK"


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return not (name.startswith(("/", "\\")) or ".." in path.parts or ":" in name
                or "\\" in name)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int,
                 digest: str | None = None, tamper: bool = False
                 ) -> tuple[int, str | None, bytes | None]:
    """(size read, hex digest, content when no digest was asked) under ``cap``."""
    hasher = hashlib.new(digest) if digest else None
    if hasher is not None and tamper:
        hasher.update(b"\x00")
    size = 0
    chunks = []
    with archive.open(info) as stream:
        while block := stream.read(1024 * 1024):
            size += len(block)
            if size > cap:
                raise ValueError(f"{info.filename} is over {cap} bytes")
            if hasher is not None:
                hasher.update(block)
            else:
                chunks.append(block)
    return size, hasher.hexdigest() if hasher else None, None if hasher else b"".join(chunks)


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _text(node: etree._Element, name: str) -> str | None:
    for child in node:
        if _local(child) == name:
            return (child.text or "").strip()
    return None


def check_sip(path: Path, config: ArchiveConfig, *, tamper: bool = False) -> Verdict:
    """The checks of the SIP spooled at ``path``; ``tamper`` (a sandbox fault) alters the
    first object's stored content by one byte before its digest is checked."""
    verdict = Verdict()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        verdict.checks.append(Check("CHECK_CONTAINER", "KO", f"not a zip: {exc}"))
        return verdict
    with archive:
        infos = archive.infolist()
        bad = [i.filename for i in infos if not _safe_name(i.filename)]
        if len(infos) > config.max_entries or bad:
            why = (f"unsafe entry names {bad[:3]}" if bad
                   else f"{len(infos)} entries, over {config.max_entries}")
            verdict.checks.append(Check("CHECK_CONTAINER", "KO", why))
            return verdict
        entries = {i.filename: i for i in infos if not i.is_dir()}
        verdict.checks.append(Check("CHECK_CONTAINER", "OK", f"{len(entries)} entries"))
        manifest_info = entries.get("manifest.xml")
        if manifest_info is None:
            verdict.checks.append(Check("CHECK_SEDA", "KO", "no manifest.xml in the SIP"))
            return verdict
        try:
            _, _, manifest = _read_capped(archive, manifest_info, config.max_manifest_bytes)
            assert manifest is not None
            root = etree.fromstring(manifest, hardened_parser())
        except (ValueError, etree.XMLSyntaxError, zipfile.BadZipFile) as exc:
            verdict.checks.append(Check("CHECK_SEDA", "KO", f"manifest.xml unreadable: {exc}"))
            return verdict
        namespace = etree.QName(root).namespace or ""
        version = next((v for v in SedaVersion if v.namespace == namespace), None)
        if version is None or _local(root) != "ArchiveTransfer":
            verdict.checks.append(Check("CHECK_SEDA", "KO",
                                        f"not a SEDA 2.1/2.2 ArchiveTransfer ({namespace})"))
            return verdict
        errors = validation_errors(manifest, version)
        if errors:
            verdict.checks.append(Check("CHECK_SEDA", "KO", errors[0][:500]))
            return verdict
        verdict.version = version
        verdict.checks.append(Check("CHECK_SEDA", "OK", f"valid SEDA {version.value}"))
        verdict.message_identifier = _text(root, "MessageIdentifier")
        verdict.archival_agreement = _text(root, "ArchivalAgreement")
        for node in root:
            if _local(node) in ("ArchivalAgency", "TransferringAgency"):
                value = _text(node, "Identifier")
                if _local(node) == "ArchivalAgency":
                    verdict.archival_agency = value
                else:
                    verdict.transferring_agency = value
        verdict.units = [n.get("id", "") for n in root.iter() if _local(n) == "ArchiveUnit"]
        _check_objects(archive, entries, root, config, verdict, tamper)
    return verdict


def _check_objects(archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo],
                   root: etree._Element, config: ArchiveConfig, verdict: Verdict,
                   tamper: bool) -> None:
    for bdo in (n for n in root.iter() if _local(n) == "BinaryDataObject"):
        object_id = bdo.get("id", "")
        verdict.objects.append(object_id)
        uri = _text(bdo, "Uri") or ""
        info = entries.get(uri)
        if info is None:
            verdict.checks.append(Check("CHECK_DATAOBJECTPACKAGE", "KO",
                                        f"{object_id}: {uri!r} is not in the SIP"))
            continue
        digest_node = next((c for c in bdo if _local(c) == "MessageDigest"), None)
        algorithm = digest_node.get("algorithm", "") if digest_node is not None else ""
        expected = (digest_node.text or "").strip().lower() if digest_node is not None else ""
        if algorithm not in _ALGORITHMS:
            verdict.checks.append(Check("CHECK_DIGEST", "KO",
                                        f"{object_id}: unknown digest algorithm {algorithm!r}"))
            continue
        try:
            size, actual, _ = _read_capped(archive, info, config.max_entry_bytes,
                                           _ALGORITHMS[algorithm],
                                           tamper and len(verdict.objects) == 1)
        except (ValueError, zipfile.BadZipFile) as exc:
            verdict.checks.append(Check("CHECK_DATAOBJECTPACKAGE", "KO", f"{object_id}: {exc}"))
            continue
        if actual != expected:
            verdict.checks.append(Check(
                "CHECK_DIGEST", "KO",
                f"{object_id} ({uri}): the {algorithm} digest of the content is {actual}, "
                f"the manifest declares {expected}"))
        declared = _text(bdo, "Size")
        if declared is not None and declared != str(size):
            verdict.checks.append(Check("CHECK_OBJECT_SIZE", "WARNING",
                                        f"{object_id}: declared {declared} bytes, {size} read"))
    if not any(c.outcome != "OK" for c in verdict.checks[2:]):
        verdict.checks.append(Check("CHECK_DIGEST", "OK", f"{len(verdict.objects)} objects"))
