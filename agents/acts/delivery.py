"""acts-delivery: posts a validated acte to its member's TdT, exactly once.

The delivery journal (``relais/journal``, topic ``relais.journal.deliveries``) makes
the call safe to repeat (``deliver_exactly_once``):

1. before calling, the intent (POSTING) is published and acknowledged by the broker;
2. the TdT is called (a real TdT knows no idempotency key: the journal's own key
   stays in the journal);
3. the outcome (POSTED, with the transaction id) is published in the stage's
   transaction, with the flow events and the first status check.

A record that finds its flow POSTED was already delivered: nothing is sent. One
that finds POSTING (a crash or a timeout came between 1 and 3) asks the TdT
first (``find_acte``: the number is unique per authority) and posts only when
the TdT's listings prove the acte is absent. When the TdT cannot tell *now*, the
record is retried along the retry tiers, then dead-lettered with its journal entry
still POSTING (a replay reconciles first); the flow is parked as *uncertain* only
when the TdT can never tell. Relais never posts blindly twice. A refusal by the
TdT (``PartnerRefusedError``) rejects the flow with the TdT's own words and
records REFUSED: the TdT created nothing, so the IDActe is free for another
submission.
"""

from __future__ import annotations

import asyncio
import base64
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from agents.acts.classification import default_typology_code, kept_classification
from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from agents.acts.links import PARTNER, ActeLink, link_outbound
from agents.acts.ports import LinksView
from agents.signature.settings import member_settings
from connectors.tdt.models import ActeForm, UploadFile
from relais.actes.classification import Classification
from relais.errors import InfrastructureError, PartnerRefusedError, Reason
from relais.flows.outbound import FlowContext, Outbound
from relais.journal.deliver import (
    Delivered,
    Journal,
    Refused,
    Uncertain,
    deliver_exactly_once,
)
from relais.journal.entry import DONE, JournalEntry
from relais.journal.polls import schedule_poll
from relais.members.model import Member
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.acts import ACTS_STATUS

log = structlog.get_logger(__name__)
STAGE = "acts-delivery"


def acte_form(submission: dict[str, Any], classification: Classification | None) -> ActeForm:
    """The S²LOW form of an acte; missing typologies get the nature's default."""
    annexes = submission.get("annexes") or []
    default = default_typology_code(classification, submission["nature_code"])
    return ActeForm(
        nature_code=submission["nature_code"],
        number=submission["numero_interne"],
        subject=unicodedata.normalize("NFC", submission["objet"]),
        decision_date=submission["decision_date"],
        classification=tuple(submission["matieres"]),
        document_papier=submission.get("document_papier", False),
        type_acte=submission["document"].get("typology") or default,
        type_pj=tuple(a.get("typology") or default for a in annexes),
    )


def acte_files(deps: ActsDeps, submission: dict[str, Any]) -> list[UploadFile]:
    """The documents as streams from the blob store: never whole in memory."""
    typed = [submission["document"], *(submission.get("annexes") or [])]
    return [
        UploadFile(name=t["blob"]["filename"], content=deps.blobs.open(t["blob"]["sha256"]),
                   media_type=t["blob"]["media_type"], size=t["blob"]["size"])
        for t in typed
    ]


class _LinksJournal:
    """The acts' links view as the kernel journal's local writer."""

    def __init__(self, links: LinksView) -> None:
        self._links = links

    def put_local(self, entry: JournalEntry) -> None:
        self._links.put_local(ActeLink.of(entry))


def _journal(deps: ActsDeps) -> Journal:
    return Journal(view=_LinksJournal(deps.links), publisher=deps.journal, stage=STAGE)


def _parked(
    deps: ActsDeps, flow: FlowContext, link: ActeLink, parent: EventHeaders, why: str, *,
    previous: str = "validated",
) -> list[Outbound]:
    """The journal entry UNCERTAIN, the flow event and the member's FAILED notice."""
    return [
        link_outbound(deps.codec, link, parent, stage=STAGE),
        *transition(
            deps, flow, stage=STAGE, state="uncertain", previous=previous,
            kind="FAILED", parent=parent, partner_ref=link.id_acte,
            message="the TdT cannot tell whether an earlier attempt delivered this acte; "
            "an operator must check before it is sent again",
            reasons=[Reason("delivery", "uncertain", why)],
        ),
    ]


def _refused(deps: ActsDeps, flow: FlowContext, link: ActeLink, parent: EventHeaders,
             error: PartnerRefusedError, *, previous: str = "validated") -> list[Outbound]:
    return [
        link_outbound(deps.codec, link, parent, stage=STAGE),
        *transition(
            deps, flow, stage=STAGE, state="rejected", previous=previous,
            kind="REJECTED", parent=parent, partner_ref=link.id_acte,
            message=f"the TdT refused the acte: {error.message}",
            reasons=error.reasons or [Reason("acte", "tdt_refused", error.message)],
        ),
    ]


def status_check(link: ActeLink, transaction_id: str) -> dict[str, Any]:
    return {
        "flow_id": link.flow_id, "member_siren": link.member_siren,
        "submission_id": link.submission_id, "id_acte": link.id_acte,
        "transaction_id": transaction_id, "polls": 0, "last_status": 1,
        "posted_at": datetime.now(UTC),
    }


async def _link_of(deps: ActsDeps, flow_id: str, wait: float = 5.0) -> ActeLink:
    """The flow's link; validation publishes it with the delivery record, so the view
    may lag by a moment."""
    for _ in range(int(wait / 0.1)):
        link = deps.links.get(flow_id)
        if link is not None:
            return link
        await asyncio.sleep(0.1)
    raise InfrastructureError(f"the link of flow {flow_id} is not visible yet")


def signs_actes(member: Member) -> bool:
    """Whether the member's i-Parapheur signs its actes before the TdT (``agents/signature``)."""
    return member_settings(member, "acte") is not None


async def _signature_of(deps: ActsDeps, flow_id: str, wait: float = 5.0) -> JournalEntry:
    """The signed acte's signature entry; journalled (acknowledged) before the acte was
    forwarded here, so the view may lag by a moment only."""
    for _ in range(int(wait / 0.1)):
        entry = deps.links.signature_of(flow_id)
        if entry is not None and entry.key("outcome") == "signed":
            return entry
        await asyncio.sleep(0.1)
    raise InfrastructureError(f"the signature of flow {flow_id} is not visible yet")


async def signature_file(deps: ActsDeps, signed: JournalEntry,
                         limit: int = 1024 * 1024) -> UploadFile:
    """The acte's detached signature as S²LOW takes it (``acte_pdf_file_sign``).

    S²LOW reads the part as text and writes it into the ACTES message's
    ``actes:Signature`` (``ActesTransaction::addSign``, ``generateActeXMLFile``), so
    i-Parapheur's DER PKCS#7 goes base64-encoded (PEM body)."""
    sha256 = signed.key("signature_sha256") or ""
    parts: list[bytes] = []
    size = 0
    async for chunk in deps.blobs.open(sha256):
        size += len(chunk)
        if size > limit:
            raise InfrastructureError(f"the signature blob {sha256} exceeds {limit} bytes")
        parts.append(bytes(chunk))
    raw = b"".join(parts)
    encoded = raw if raw.lstrip().startswith(b"-----BEGIN") else base64.encodebytes(raw)
    return UploadFile(name=signed.key("signature_filename") or "signature.p7s",
                      content=encoded, media_type="application/pkcs7-signature",
                      size=len(encoded))


async def handle_delivery(record: InputRecord, deps: ActsDeps) -> list[Outbound]:
    submission = deps.codec.decode(record.value or b"", expected="ActeSubmission").record
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    siren = h.get(headers, h.MEMBER) or submission["member_siren"]
    flow = FlowContext(flow_id, siren, "acte", submission["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    link = await _link_of(deps, flow_id)
    if link.delivery in DONE:
        log.info("acts.delivery_skipped", delivery=link.delivery)
        return []
    member = deps.member(siren)
    signed = await _signature_of(deps, flow_id) if signs_actes(member) else None
    previous = "signed" if signed is not None else "validated"
    connector = deps.connectors.for_member(member)
    account = member.account(PARTNER)
    tdt_url = account.url if account else None

    async def call() -> str:
        form = acte_form(submission, kept_classification(deps, siren))
        files = acte_files(deps, submission)
        if signed is None:
            result = await connector.post_acte(form, files)
        else:
            result = await connector.post_acte(form, files,
                                               signature=await signature_file(deps, signed))
        return result.transaction_id

    async def reconcile() -> str | None:
        return await connector.find_acte(number=link.numero_interne,
                                         decision_date=link.decision_date)

    outcome = await deliver_exactly_once(
        replace(link, tdt_url=tdt_url or link.tdt_url).to_entry(), journal=_journal(deps),
        call=call, reconcile=reconcile, parent=parent,
    )
    done = ActeLink.of(outcome.entry)
    match outcome:
        case Delivered():
            return posted_outputs(deps, flow, done, parent, previous=previous)
        case Uncertain(why=why):
            return _parked(deps, flow, done, parent, why, previous=previous)
        case Refused(error=error):
            return _refused(deps, flow, done, parent, error, previous=previous)
    return []


def posted_outputs(
    deps: ActsDeps, flow: FlowContext, posted: ActeLink, parent: EventHeaders | None, *,
    stage: str = STAGE, previous: str = "validated", message: str | None = None,
) -> list[Outbound]:
    """What recording a POSTED link publishes: the journal entry, the ``posted`` flow event
    and notification, and the first status check on the first poll tier. Also used by
    ``relais flows resolve --posted`` (``ops/resolve.py``)."""
    transaction_id = posted.transaction_id or ""
    return [
        link_outbound(deps.codec, posted, parent, stage=stage),
        *transition(deps, flow, stage=stage, state="posted", previous=previous,
                    kind="STATE_CHANGED", parent=parent, partner_ref=posted.id_acte,
                    message=message or f"acte {posted.id_acte} posted to the TdT "
                    f"(transaction {transaction_id})",
                    details={"transaction_id": transaction_id}),
        first_status_check(deps, flow, status_check(posted, transaction_id), parent,
                           stage=stage),
    ]


def first_status_check(deps: ActsDeps, flow: FlowContext, check: dict[str, Any],
                       parent: EventHeaders | None, *, stage: str) -> Outbound:
    """The acte's first status check, on the schedule's first poll tier."""
    return schedule_poll(
        deps.codec, schema_name="ActeStatusCheck", check=check, flow_id=flow.flow_id,
        member_siren=flow.member_siren, status_topic=ACTS_STATUS.name,
        wait=deps.poll_schedule[0], stage=stage, parent=parent,
    )
