"""acts-validation: the checks a TdT would make, made before anything reaches it.

Input ``relais.acts.submitted`` (keyed by SIREN, so one member's actes are
checked in order and IDActe uniqueness is decided on one partition). Output:
the acte forwarded to ``relais.acts.delivery`` (to ``relais.signature.requests`` first
when the member's i-Parapheur signs its actes), or a rejection naming each
failed field. Nothing reaches the TdT from a rejected acte.

A contract (nature 4, CC) of a member whose ``contractor_check`` is ``refuse`` is also
checked against the hub-wide registry cache, and may be parked on a delay tier until its
contractors' answers are cached (``agents/acts/contractors.py``); any other contract's
contractors are looked up beside it, never in its way.

The numéro interne and the documents' file names are checked with the TdT's own
rules (``connectors.tdt.rules``: S²LOW's number pattern, its file name and
extension checks); each reason names the refused field, and a reason is listed
once even when two checks find it.
"""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta
from typing import Any

import structlog

from agents.acts.classification import current_classification
from agents.acts.contractors import (
    CHILD_EVENT,
    CONTRACTOR_WAITS,
    ContractorCheck,
    check_contractors,
    contractor_lookups,
    is_contract,
    park_contract,
    pending_message,
    unverified_reasons,
)
from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from agents.acts.links import ActeLink, link_outbound
from agents.signature.settings import member_settings
from connectors.tdt.rules import archive_size_bound, check_filename, check_number
from relais.actes.ids import build_id_acte, nature_reasons, objet_reasons
from relais.errors import Reason, ValidationError
from relais.flows.outbound import FlowContext, Outbound
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.acts import ACTS_DELIVERY
from topics.signature import SIGNATURE_REQUESTS

log = structlog.get_logger(__name__)
STAGE = "acts-validation"
PDF_MAGIC = b"%PDF-"


async def _head(deps: ActsDeps, sha256: str, size: int = 8) -> bytes:
    chunks = deps.blobs.open(sha256)
    try:
        async for chunk in chunks:
            return bytes(chunk[:size])
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    return b""


def _at(field: str, reasons: list[Reason]) -> list[Reason]:
    """``reasons`` about one value, re-addressed to the submission field it came from."""
    return [Reason(field, r.code, r.message) for r in reasons]


def unique_reasons(reasons: list[Reason]) -> list[Reason]:
    """Each (field, code) once, the first one found kept, in order."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for reason in reasons:
        if (reason.field, reason.code) not in seen:
            seen.add((reason.field, reason.code))
            kept.append(reason)
    return kept


def _documents(submission: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("document", submission["document"])] + [
        (f"annexes[{i}]", annex) for i, annex in enumerate(submission.get("annexes") or [])
    ]


def filename_reasons(submission: dict[str, Any]) -> list[Reason]:
    """File names and extensions the way the TdT checks them, before anything is sent.

    Reasons name the submission's fields: ``document.blob.filename``,
    ``annexes[0].blob.media_type``…
    """
    reasons: list[Reason] = []
    acte_media_type = submission["document"]["blob"]["media_type"]
    for path, typed in _documents(submission):
        blob = typed["blob"]
        found = check_filename(
            blob["filename"], blob["media_type"],
            role="acte" if path == "document" else "annex",
            nature_code=submission["nature_code"], classification=submission["matieres"],
            acte_media_type=acte_media_type, field=f"{path}.blob",
        )
        reasons += [Reason(_filename_field(r.field), r.code, r.message) for r in found]
    return reasons


def _filename_field(field: str) -> str:
    return field[: -len(".name")] + ".filename" if field.endswith(".name") else field


async def document_reasons(deps: ActsDeps, submission: dict[str, Any]) -> list[Reason]:
    """Sizes, presence and PDF-ness of the documents."""
    reasons: list[Reason] = []
    sizes: list[int] = []
    for path, typed in _documents(submission):
        blob = typed["blob"]
        size = await deps.blobs.stat(blob["sha256"])
        if size is None:
            reasons.append(Reason(f"{path}.blob.sha256", "blob_not_found",
                                  f"no blob with digest {blob['sha256']}"))
            continue
        sizes.append(size)
        if path == "document" and blob["media_type"] == "application/pdf" \
                and (await _head(deps, blob["sha256"]))[:5] != PDF_MAGIC:
            reasons.append(Reason("document.blob", "not_pdf",
                                  "the main document of an acte must be a PDF file"))
    total = sum(sizes)
    if total > deps.max_acte_bytes:
        reasons.append(Reason("document", "too_large",
                              f"the acte and its annexes weigh {total} bytes, more than the "
                              f"{deps.max_acte_bytes} a TdT accepts"))
    elif (archive := archive_size_bound(sizes)) > deps.max_acte_bytes:
        # S²LOW limits its tar.gz of the files and its XML, not the files (checkArchiveSize)
        reasons.append(Reason("document", "archive_too_large",
                              f"the acte and its annexes weigh {total} bytes; the TdT's "
                              f"archive of them and its XML may weigh up to {archive} bytes, "
                              f"more than the {deps.max_acte_bytes} it accepts"))
    return reasons


def _typologies(submission: dict[str, Any]) -> list[str]:
    codes = [submission["document"].get("typology")]
    codes += [annex.get("typology") for annex in submission.get("annexes") or []]
    return [code for code in codes if code]


async def validate_acte(
    deps: ActsDeps, siren: str, flow_id: str, submission: dict[str, Any]
) -> tuple[str, list[Reason]]:
    """The acte's IDActe and every reason it cannot go to the TdT (empty: it can)."""
    member = deps.member(siren)
    # the objet is sent folded to ISO-8859-1 after NFC (a decomposed é is an é)
    reasons: list[Reason] = [
        *nature_reasons(submission["nature_code"]),
        *_at("numero_interne", check_number(submission["numero_interne"])),
        *objet_reasons(unicodedata.normalize("NFC", submission["objet"])),
        *filename_reasons(submission),
    ]
    decision: date = submission["decision_date"]
    if decision > date.today() + timedelta(days=1):
        reasons.append(Reason("decision_date", "in_future",
                              f"the decision date {decision.isoformat()} is in the future"))
    id_acte = ""
    if not reasons:
        try:
            id_acte = build_id_acte(member.department, siren, decision,
                                    submission["numero_interne"], submission["nature_code"])
        except ValidationError as exc:
            reasons.extend(exc.reasons)
    if id_acte:
        owner = deps.links.flow_of_id_acte(siren, id_acte)
        if owner is not None and owner != flow_id:
            reasons.append(Reason("numero_interne", "duplicate_id_acte",
                                  f"IDActe {id_acte} was already used by another submission"))
    if member.tdt is None:
        reasons.append(Reason("member_siren", "no_tdt",
                              f"member {siren} has no tiers de télétransmission configured"))
    else:
        classification = await current_classification(deps, member)
        reasons.extend(classification.check(submission["nature_code"], submission["matieres"],
                                            _typologies(submission)))
        used = submission.get("classification_date")
        if used is not None and used != classification.date_version:
            reasons.append(Reason(
                "classification_date", "stale_classification",
                f"the acte uses the classification of {used.isoformat()}, the prefecture's "
                f"current one is of {classification.date_version.isoformat()}",
            ))
    reasons.extend(await document_reasons(deps, submission))
    return id_acte, unique_reasons(reasons)


async def handle_submitted(record: InputRecord, deps: ActsDeps) -> list[Outbound]:
    """Check one acte; forward it for delivery or reject it with reasons."""
    submission = deps.codec.decode(record.value or b"", expected="ActeSubmission").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or submission["member_siren"]
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    flow = FlowContext(flow_id, siren, "acte", submission["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    existing = deps.links.get(flow_id)
    if existing is not None:
        log.info("acts.duplicate_submission", delivery=existing.delivery)
        return []
    id_acte, reasons = await validate_acte(deps, siren, flow_id, submission)
    check: ContractorCheck | None = None
    if is_contract(submission) and deps.member(siren).refuses_closed_contractors:
        check = check_contractors(deps.registry_cache, submission, deps.clock())
        reasons = unique_reasons([*reasons, *check.reasons])
        if not reasons and check.uncached:
            waits = h.get_count(headers, CONTRACTOR_WAITS)
            if deps.registry_configured and waits < len(deps.contractor_wait_tiers):
                return _park(deps, record, flow, parent, submission, check, waits)
            log.info("acts.contractors_unverified", waits=waits,
                     configured=deps.registry_configured, count=len(check.uncached))
            reasons = unverified_reasons(check.uncached, configured=deps.registry_configured)
    if reasons:
        log.info("acts.rejected", fields=[r.field for r in reasons])
        return transition(
            deps, flow, stage=STAGE, state="rejected", previous="received", kind="REJECTED",
            message="the acte was refused before reaching the TdT", parent=parent,
            reasons=reasons, partner_ref=id_acte or None,
        )
    link = ActeLink(
        flow_id=flow_id, member_siren=siren, submission_id=submission["submission_id"],
        id_acte=id_acte, numero_interne=submission["numero_interne"],
        decision_date=submission["decision_date"], nature_code=submission["nature_code"],
        delivery="VALIDATED", idempotency_key=f"{flow_id}:post",
    )
    deps.links.put_local(link)
    log.info("acts.validated", id_acte=id_acte)
    # a member whose i-Parapheur signs its actes: signature first (agents/signature)
    signs = member_settings(deps.member(siren), "acte") is not None
    onward = SIGNATURE_REQUESTS if signs else ACTS_DELIVERY
    return [
        link_outbound(deps.codec, link, parent, stage=STAGE),
        *transition(deps, flow, stage=STAGE, state="validated", previous="received",
                    kind="STATE_CHANGED", message=f"acte {id_acte} passed the checks",
                    parent=parent, partner_ref=id_acte,
                    details=None if check is None else {"contractors_checked": str(check.known)}),
        Outbound(onward.name, flow_id.encode("utf-8"), record.value,
                 h.replace(headers, **{h.ATTEMPT: None, CONTRACTOR_WAITS: None})),
        # refuse mode: the contractors were read from the cache (and looked up when parked)
        *(contractor_lookups(deps.codec, siren, submission, parent) if check is None else []),
    ]


def _park(
    deps: ActsDeps, record: InputRecord, flow: FlowContext, parent: EventHeaders,
    submission: dict[str, Any], check: ContractorCheck, waits: int,
) -> list[Outbound]:
    """A contract whose contractors the cache does not hold yet, parked until they are
    (back to this stage); the first time, their look-ups and one notification to the
    member (a child event of the ``received`` acte: its state does not move)."""
    parked = park_contract(record, deps.contractor_wait_tiers, waits)
    log.info("acts.contract_parked", waits=waits + 1, tier=parked.topic,
             uncached=len(check.uncached))
    if waits > 0:
        return [parked]
    uncached = [siret for _, siret in check.uncached]
    return [
        *contractor_lookups(deps.codec, flow.member_siren, submission, parent, only=uncached),
        *transition(deps, flow, stage=STAGE, state="received", previous="received",
                    kind="STATE_CHANGED", parent=parent, child_event=CHILD_EVENT,
                    message=pending_message(check.uncached, deps.contractor_wait_tiers),
                    details={"pending_contractors": ",".join(uncached)}),
        parked,
    ]
