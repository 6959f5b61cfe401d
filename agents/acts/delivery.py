"""acts-delivery: posts a validated acte to its member's TdT, exactly once.

The delivery journal (``relais.acts.links``) makes the call safe to repeat:

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
import unicodedata
from datetime import UTC, datetime
from typing import Any

import structlog

from agents.acts.classification import default_typology_code, kept_classification
from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from agents.acts.links import ActeLink
from agents.acts.ports import TdtConnector
from connectors.tdt.models import ActeForm, UploadFile
from relais.actes.classification import Classification
from relais.errors import (
    InfrastructureError,
    PartnerPermanentError,
    PartnerRefusedError,
    PartnerTransientError,
    Reason,
)
from relais.flows.ids import event_id_for
from relais.flows.outbound import FlowContext, Outbound
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.catalogue import ACTS_LINKS, ACTS_STATUS

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


async def _journal(deps: ActsDeps, link: ActeLink, parent: EventHeaders) -> None:
    """Publish a journal entry outside the stage transaction, acknowledged before returning."""
    await deps.journal.publish(
        ACTS_LINKS.name, key=link.flow_id, schema_name="ActeLink", record=link.to_record(),
        headers=EventHeaders.new(source=f"/relais/hub/{STAGE}", type="fr.relais.acts.ActeLink",
                                 subject=link.flow_id, flow_id=link.flow_id, parent=parent),
    )
    deps.links.put_local(link)


class ReconciliationPendingError(PartnerTransientError):
    """The TdT cannot tell now whether an earlier post of this acte arrived.

    Retriable: the stage runner retries the record along the retry tiers. When the
    tiers are spent the record is dead-lettered like any other (flow *failed*); its
    journal entry stays POSTING, so a replay reconciles again before posting.
    """

    code = "reconciliation_pending"

    def __init__(self, cause: PartnerTransientError) -> None:
        super().__init__(
            f"the TdT cannot tell yet whether an earlier post arrived: {cause.message}",
            partner=cause.partner, retry_after=cause.retry_after,
        )


async def _reconcile(connector: TdtConnector, link: ActeLink) -> str | None:
    return await connector.find_acte(number=link.numero_interne,
                                     decision_date=link.decision_date)


def _parked(
    deps: ActsDeps, flow: FlowContext, link: ActeLink, parent: EventHeaders, why: str,
) -> list[Outbound]:
    """The journal entry UNCERTAIN, the flow event and the member's FAILED notice."""
    parked = link.moved("UNCERTAIN")
    return [
        deps.out(ACTS_LINKS.name, flow, "ActeLink", parked.to_record(), stage=STAGE,
                 event_id=event_id_for(flow.flow_id, "link", "UNCERTAIN"), parent=parent),
        *transition(
            deps, flow, stage=STAGE, state="uncertain", previous="validated",
            kind="FAILED", parent=parent, partner_ref=link.id_acte,
            message="the TdT cannot tell whether an earlier attempt delivered this acte; "
            "an operator must check before it is sent again",
            reasons=[Reason("delivery", "uncertain", why)],
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


async def handle_delivery(record: InputRecord, deps: ActsDeps) -> list[Outbound]:
    submission = deps.codec.decode(record.value or b"", expected="ActeSubmission").record
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    siren = h.get(headers, h.MEMBER) or submission["member_siren"]
    flow = FlowContext(flow_id, siren, "acte", submission["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    link = await _link_of(deps, flow_id)
    if link.delivery in ("POSTED", "UNCERTAIN", "REFUSED"):
        log.info("acts.delivery_skipped", delivery=link.delivery)
        return []
    member = deps.member(siren)
    connector = deps.connectors.for_member(member)
    tdt_url = member.tdt.url if member.tdt else None
    transaction_id: str | None = None
    maybe_posted = link.delivery == "POSTING"  # an earlier attempt may have reached the TdT
    if maybe_posted:
        try:
            transaction_id = await _reconcile(connector, link)
        except PartnerTransientError as exc:
            log.warning("acts.reconciliation_pending", error=exc.message)
            raise ReconciliationPendingError(exc) from exc
        except PartnerPermanentError as exc:
            log.warning("acts.delivery_uncertain", error=exc.message)
            outputs = _parked(deps, flow, link, parent, exc.message)
            deps.links.put_local(link.moved("UNCERTAIN"))
            return outputs
        log.info("acts.reconciled", transaction_id=transaction_id)
    if transaction_id is None:
        await _journal(deps, link.moved("POSTING", tdt_url=tdt_url), parent)
        try:
            result = await connector.post_acte(
                acte_form(submission, kept_classification(deps, siren)),
                acte_files(deps, submission),
            )
        except PartnerRefusedError as exc:
            if maybe_posted:
                # The listings are read a few states at a time, so an acte that moved between
                # two states meanwhile can be missed; S²LOW then refuses its number. Ask again:
                # if it is there, this refusal is about our own earlier post.
                try:
                    transaction_id = await _reconcile(connector, link)
                except PartnerTransientError as pending:
                    raise ReconciliationPendingError(pending) from pending
            if transaction_id is not None:
                log.info("acts.reconciled_after_refusal", transaction_id=transaction_id,
                         refusal=exc.message)
                posted = link.moved("POSTED", tdt_url=tdt_url, transaction_id=transaction_id)
                deps.links.put_local(posted)
                return posted_outputs(deps, flow, posted, parent)
            log.info("acts.tdt_refused", error=exc.message)
            refused = link.moved("REFUSED", tdt_url=tdt_url)
            deps.links.put_local(refused)
            return [
                deps.out(ACTS_LINKS.name, flow, "ActeLink", refused.to_record(), stage=STAGE,
                         event_id=event_id_for(flow_id, "link", "REFUSED"), parent=parent),
                *transition(
                    deps, flow, stage=STAGE, state="rejected", previous="validated",
                    kind="REJECTED", parent=parent, partner_ref=link.id_acte,
                    message=f"the TdT refused the acte: {exc.message}",
                    reasons=exc.reasons or [Reason("acte", "tdt_refused", exc.message)],
                ),
            ]
        transaction_id = result.transaction_id
    posted = link.moved("POSTED", tdt_url=tdt_url, transaction_id=transaction_id)
    deps.links.put_local(posted)
    return posted_outputs(deps, flow, posted, parent)


def posted_outputs(
    deps: ActsDeps, flow: FlowContext, posted: ActeLink, parent: EventHeaders | None, *,
    stage: str = STAGE, previous: str = "validated", message: str | None = None,
) -> list[Outbound]:
    """What recording a POSTED link publishes: the journal entry, the ``posted`` flow event
    and notification, and the first status check on the first poll tier. Also used by
    ``relais flows resolve --posted`` (``ops/resolve.py``)."""
    flow_id, transaction_id = flow.flow_id, posted.transaction_id or ""
    check = status_check(posted, transaction_id)
    first = tier(deps.poll_schedule[0])
    check_headers = h.replace(
        EventHeaders.new(source=f"/relais/hub/{stage}", type="fr.relais.acts.ActeStatusCheck",
                         subject=flow_id, flow_id=flow_id, parent=parent).to_kafka(),
        **{h.MEMBER: flow.member_siren, h.DELAY_TARGET: ACTS_STATUS.name},
    )
    return [
        deps.out(ACTS_LINKS.name, flow, "ActeLink", posted.to_record(), stage=stage,
                 event_id=event_id_for(flow_id, "link", "POSTED"), parent=parent),
        *transition(deps, flow, stage=stage, state="posted", previous=previous,
                    kind="STATE_CHANGED", parent=parent, partner_ref=posted.id_acte,
                    message=message or f"acte {posted.id_acte} posted to the TdT "
                    f"(transaction {transaction_id})",
                    details={"transaction_id": transaction_id}),
        Outbound(first.topic.name, flow_id.encode("utf-8"),
                 deps.codec.encode("ActeStatusCheck", check), check_headers),
    ]
