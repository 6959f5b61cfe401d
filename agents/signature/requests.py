"""The ``CreerDossier`` of a flow: its DossierID derived from the flow id, the member's
settings, the document and annexes, and the acte's metadata or the PES's XPath."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from agents.signature.settings import SignatureSettings
from connectors.iparapheur.ids import dossier_id_for
from connectors.iparapheur.models import ActeMetadata, Annex, DossierRequest


def acte_dossier(
    flow_id: str, settings: SignatureSettings, *, document: bytes, document_name: str,
    annexes: Sequence[Annex], nature: str, classification: str, decision_date: date,
    subject: str, today: date,
) -> DossierRequest:
    """An acte to sign: a PDF, its annexes and ``MetaDataTdtACTES``."""
    return DossierRequest(
        dossier_id=dossier_id_for(flow_id),
        technical_type=settings.technical_type,
        sub_type=settings.sub_type,
        document=document,
        document_content_type="application/pdf",
        document_name=document_name,
        visibility=settings.visibility,
        deadline=_deadline(settings, today),
        annexes=tuple(annexes),
        acte=ActeMetadata(nature, classification, decision_date, subject),
    )


def pes_dossier(
    flow_id: str, settings: SignatureSettings, *, pes: bytes, file_name: str,
    visual_pdf: bytes | None, today: date,
) -> DossierRequest:
    """A PES to sign in XML (``XPathPourSignatureXML``); ``visual_pdf`` is what the signer
    sees (Pastell sends a default one when the member has none)."""
    return DossierRequest(
        dossier_id=dossier_id_for(flow_id),
        technical_type=settings.technical_type,
        sub_type=settings.sub_type,
        document=pes,
        document_content_type="application/xml",
        document_name=file_name,
        visibility=settings.visibility,
        deadline=_deadline(settings, today),
        xpath_for_xml_signature=settings.xpath_for_xml_signature,
        visual_pdf=visual_pdf,
    )


def _deadline(settings: SignatureSettings, today: date) -> date | None:
    if settings.deadline_days is None:
        return None
    return today + timedelta(days=settings.deadline_days)
