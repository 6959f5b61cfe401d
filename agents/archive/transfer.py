"""An ``ArchiveSubmission`` (or an acknowledged acte's dossier) as a SEDA transfer spec.

The member is the originating agency (its SIREN); the agreement, profile and rules come
from the submission, else from the member's archive account (:class:`ArchiveSettings`).
The transfer's ``MessageIdentifier`` is the flow id: unique per member submission and the
same on every retry, so the archive's logbook finds an interrupted upload again.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors.archive.settings import ArchiveSettings
from relais.errors import Reason
from relais.seda.model import Keyword, Rule
from relais.seda.package import DocumentSpec, TransferSpec, UnitSpec

LEVELS = frozenset({"Fonds", "Subfonds", "Class", "Collection", "Series", "Subseries",
                    "RecordGrp", "SubGrp", "File", "Item", "OtherLevel"})
MAX_DOCUMENTS = 10_000


def _date(value: object, field: str, reasons: list[Reason]) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        reasons.append(Reason(field, "date", f"{value!r} is not an ISO date (YYYY-MM-DD)"))
        return None


def _rule(identifier: str | None) -> Rule | None:
    return Rule(identifier) if identifier else None


def submission_reasons(submission: dict[str, Any]) -> list[Reason]:
    """What makes a submission impossible to transfer (empty: it can be built)."""
    reasons: list[Reason] = []
    if submission.get("description_level") not in LEVELS:
        reasons.append(Reason("description_level", "unknown_level",
                              f"{submission.get('description_level')!r} is not a SEDA level"))
    documents = submission.get("documents") or []
    if not documents:
        reasons.append(Reason("documents", "required", "at least one document"))
    if len(documents) > MAX_DOCUMENTS:
        reasons.append(Reason("documents", "too_many", f"at most {MAX_DOCUMENTS} documents"))
    if not str(submission.get("title") or "").strip():
        reasons.append(Reason("title", "required", "the root unit needs a title"))
    action = submission.get("appraisal_final_action")
    if action not in (None, "Keep", "Destroy"):
        reasons.append(Reason("appraisal_final_action", "unknown", f"{action!r}: Keep or Destroy"))
    for field in ("start_date", "end_date"):
        _date(submission.get(field), field, reasons)
    return reasons


def transfer_spec(submission: dict[str, Any], settings: ArchiveSettings,
                  message_identifier: str) -> TransferSpec:
    """The transfer of a submission :func:`submission_reasons` accepted."""
    ignored: list[Reason] = []
    keywords = [Keyword(str(k)) for k in submission.get("keywords") or [] if str(k).strip()]
    if submission.get("originating_service"):
        keywords.append(Keyword(str(submission["originating_service"]), "corpname"))
    children: list[UnitSpec] = []
    groups: dict[str, list[UnitSpec]] = {}
    for document in submission["documents"]:
        blob = document["blob"]
        item = UnitSpec(
            title=str(document.get("title") or blob["filename"]),
            level="Item",
            document_type=document.get("document_type"),
            documents=(DocumentSpec(str(blob["sha256"]), str(blob["filename"]),
                                    str(blob["media_type"])),),
        )
        group = document.get("group")
        if group:
            if group not in groups:
                groups[group] = []
                children.append(UnitSpec(title=str(group), level="RecordGrp"))
            groups[group].append(item)
        else:
            children.append(item)
    children = [UnitSpec(title=c.title, level=c.level, children=tuple(groups[c.title]))
                if c.level == "RecordGrp" and c.title in groups and not c.documents else c
                for c in children]
    root = UnitSpec(
        title=str(submission["title"]),
        level=str(submission.get("description_level") or "RecordGrp"),
        description=submission.get("description"),
        keywords=tuple(keywords),
        start_date=_date(submission.get("start_date"), "start_date", ignored),
        end_date=_date(submission.get("end_date"), "end_date", ignored),
        children=tuple(children),
    )
    return TransferSpec(
        version=settings.seda_version,
        message_identifier=message_identifier,
        archival_agency=settings.archival_agency,
        transferring_agency=settings.transferring_agency,
        originating_agency=str(submission["member_siren"]),
        units=(root,),
        archival_agreement=submission.get("archival_agreement") or settings.archival_agreement,
        archival_profile=submission.get("archival_profile") or settings.archival_profile,
        comment=f"Relais transfer of submission {submission['submission_id']}",
        access_rule=_rule(submission.get("access_rule") or settings.access_rule),
        appraisal_rule=_rule(submission.get("appraisal_rule") or settings.appraisal_rule),
        appraisal_final_action=str(submission.get("appraisal_final_action")
                                   or settings.appraisal_action),
    )
