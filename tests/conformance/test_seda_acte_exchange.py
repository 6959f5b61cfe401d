"""An acte with its whole exchange (acte, annexes, ARActe, stamped copy, prefecture
messages), as the automatic archiving packages it, validates against the official SEDA
2.1 and 2.2 schemas, with its tree: acte → document, Annexes, Échanges avec la préfecture."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from lxml import etree

from agents.archive.acts import acte_submission
from agents.archive.transfer import submission_reasons, transfer_spec
from connectors.archive.settings import ArchiveSettings
from relais.seda.model import SedaVersion
from relais.seda.package import prepare_sip
from relais.seda.xsd import validation_errors
from tests.conformance.seda_helpers import MemoryBlobs


def _blob(blobs: MemoryBlobs, content: bytes, filename: str, media: str) -> dict[str, object]:
    return {"sha256": blobs.add(content), "size": len(content), "media_type": media,
            "filename": filename}


@pytest.mark.parametrize("version", [SedaVersion.V2_1, SedaVersion.V2_2])
def test_an_acte_and_its_exchange(version: SedaVersion) -> None:
    blobs = MemoryBlobs()
    dossier = {
        "submission_id": "DELIB-2026-042", "member_siren": "212102313", "nature_code": 1,
        "matieres": [2, 1], "numero_interne": "DELIB2026042", "decision_date": date(2026, 3, 2),
        "objet": "Approbation du plan local d'urbanisme — révision n°2 « Côte-d'Or »",
        "document": {"blob": _blob(blobs, b"%PDF-1.7 acte", "délibération.pdf",
                                   "application/pdf"), "typology": "99_DE"},
        "annexes": [{"blob": _blob(blobs, b"%PDF-1.5 plan " + bytes([48 + i]), f"plan-{i}.pdf",
                                   "application/pdf"), "typology": "22_DP"} for i in range(3)],
    }
    id_acte = "021-212102313-20260302-DELIB2026042-DE"
    submission = acte_submission(
        dossier, id_acte,
        aracte=_blob(blobs, b"<ARActe/>", f"{id_acte}-1-2.xml", "application/xml"),
        stamped=_blob(blobs, b"%PDF-1.4 tampon", f"{id_acte}-tampon.pdf", "application/pdf"),
        prefecture_messages=(
            (_blob(blobs, b"<LettreObservations/>", "2-1.xml", "application/xml"),
             "Lettre d'observations"),
            (_blob(blobs, b"%PDF-1.4 courrier", "courrier.pdf", "application/pdf"),
             "Courrier simple"),
        ))
    assert submission_reasons(submission) == []
    settings = ArchiveSettings(tenant=1, archival_agency="AD21", seda_version=version,
                               archival_agreement="IC-ACTES", access_rule="ACC-00001",
                               appraisal_rule="APP-00001")
    spec = transfer_spec(submission, settings, "212102313-flow")
    sip = asyncio.run(prepare_sip(spec, blobs.open, now=datetime(2026, 12, 4, tzinfo=UTC)))
    assert validation_errors(sip.manifest, version) == []
    ns = {"s": version.namespace}
    root = etree.fromstring(sip.manifest)
    top = root.find(".//s:DescriptiveMetadata/s:ArchiveUnit", ns)
    assert top is not None
    titles = [u.findtext("s:Content/s:Title", namespaces=ns)
              for u in top.findall("s:ArchiveUnit", ns)]
    assert titles == [f"Acte {id_acte}", "Annexes", "Échanges avec la préfecture"]
    exchange = top.findall("s:ArchiveUnit", ns)[2]
    assert [u.findtext("s:Content/s:DocumentType", namespaces=ns)
            for u in exchange.findall("s:ArchiveUnit", ns)] == [
        "ARActe", "Acte tamponné", "Courrier de la préfecture", "Courrier de la préfecture"]
    assert len(root.findall(".//s:BinaryDataObject", ns)) == 1 + 3 + 2 + 2
    assert root.findtext(".//s:ArchivalAgreement", namespaces=ns) == "IC-ACTES"
