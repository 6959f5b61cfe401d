"""acts-followup: a member's cancellation (6-1) or reply to a prefecture message, sent to
the TdT against the acte it is about.

A cancellation is sent with ``cancel`` and the acte's status is polled again
until the prefecture's ARAnnulation (6-2) makes it *cancelled*. A reply goes
with ``post_reply`` against the prefecture message it answers. A refusal by the
TdT (``PartnerRefusedError``, e.g. S²LOW's ``KO`` line) rejects the follow-up
with the TdT's own words.

Reply kinds are those S²LOW accepts: 2-2 answers a courrier simple; a pieces
request (3-1) or an observation letter (4-1) is answered by a refusal (3-3, 4-3)
or a sending (3-4, 4-4), posted as ``type_envoie`` 3 or 4. The acknowledgements
3-2 and 4-2 carry no document and are not posted: they are refused here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from agents.acts.ports import TdtConnector, transaction_id_of
from connectors.tdt.models import ReplyForm, TransactionStatus, UploadFile
from relais.errors import PartnerRefusedError, Reason, ValidationError
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, Outbound
from relais.journal.polls import schedule_poll
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.acts import ACTS_STATUS

log = structlog.get_logger(__name__)
STAGE = "acts-followup"
#: Reply kinds S²LOW accepts (``actes_transac_reponse_create.php``).
REPLY_TYPES = ("2-2", "3-3", "3-4", "4-3", "4-4")
#: Acknowledgements of a pieces request / an observation letter: nothing to post.
NOT_POSTED = {"3-2": "pieces request (3-1)", "4-2": "observation letter (4-1)"}


def reply_type_reasons(reply_type: str | None) -> list[Reason]:
    """Why ``reply_type`` cannot be sent to the TdT (empty: it can)."""
    if reply_type in REPLY_TYPES:
        return []
    if reply_type in NOT_POSTED:
        return [Reason(
            "reply_type", "not_posted",
            f"{reply_type} acknowledges a {NOT_POSTED[reply_type]} without a document; the TdT "
            f"takes no such reply: answer with a refusal ({reply_type[0]}-3) or a sending "
            f"({reply_type[0]}-4)",
        )]
    return [Reason("reply_type", "unknown_reply_type",
                   f"{reply_type!r} is not a reply the TdT accepts: one of "
                   f"{', '.join(REPLY_TYPES)}")]


def _refuse(deps: ActsDeps, flow: FlowContext, parent: EventHeaders, reasons: list[Reason],
            message: str) -> list[Outbound]:
    return transition(deps, flow, stage=STAGE, state="rejected", previous="received",
                      kind="REJECTED", parent=parent, reasons=reasons, message=message)


async def _earlier_cancel_went_through(
    connector: TdtConnector, transaction_id: str, headers: list[tuple[str, bytes]],
) -> bool:
    """After a cancellation refused on a *retried* record, whether the first, unanswered
    call got through: the acte is cancelled (0) or still acknowledged (4), which S²LOW
    refuses to cancel only while a cancellation is under way. A refusal on a first
    attempt is the TdT's answer as it stands."""
    if h.get(headers, h.ATTEMPT) is None:
        return False
    status = (await connector.get_status(transaction_id)).status
    return status in (TransactionStatus.CANCELLED, TransactionStatus.ACKNOWLEDGED)


async def handle_followup(record: InputRecord, deps: ActsDeps) -> list[Outbound]:
    followup = deps.codec.decode(record.value or b"", expected="ActeFollowUp").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or followup["member_siren"]
    flow = FlowContext(h.get(headers, FLOW_ID_HEADER) or "", siren, "acte-followup",
                       followup["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    acte_flow = flow_id_for(siren, followup["acte_submission_id"])
    link = deps.links.get(acte_flow)
    if link is None or link.transaction_id is None:
        return _refuse(deps, flow, parent, [Reason(
            "acte_submission_id", "unknown_acte",
            f"no transmitted acte with submission id {followup['acte_submission_id']!r}")],
            "the follow-up names no acte transmitted to the TdT")
    connector = deps.connectors.for_member(deps.member(siren))
    acte = FlowContext(acte_flow, siren, "acte", link.submission_id)
    if followup["kind"] == "CANCELLATION":
        cancel_id: str | None
        sent_message = f"cancellation of acte {link.id_acte} sent to the TdT (6-1)"
        try:
            cancel_id = transaction_id_of(await connector.cancel(link.transaction_id))
        except PartnerRefusedError as exc:
            if not await _earlier_cancel_went_through(connector, link.transaction_id, headers):
                log.info("acts.followup_refused", kind="cancellation", error=exc.message)
                return _refuse(deps, flow, parent, exc.reasons or [Reason(
                    "acte", "tdt_refused", exc.message)],
                    f"the TdT refused the cancellation: {exc.message}")
            # a retry after a call that timed out: the first call did reach the TdT
            log.info("acts.cancel_already_under_way", error=exc.message)
            cancel_id = None
            sent_message = (f"cancellation of acte {link.id_acte} is under way at the TdT "
                            f"(6-1; an earlier attempt reached it: {exc.message})")
        check = {
            "flow_id": acte_flow, "member_siren": siren, "submission_id": link.submission_id,
            "id_acte": link.id_acte, "transaction_id": link.transaction_id, "polls": 0,
            "last_status": 4, "posted_at": datetime.now(UTC), "awaiting": "cancellation",
        }
        return [
            *transition(deps, flow, stage=STAGE, state="sent", previous="received",
                        kind="STATE_CHANGED", parent=parent, partner_ref=cancel_id,
                        message=sent_message),
            *transition(deps, acte, stage=STAGE, state="acknowledged", previous="acknowledged",
                        kind="STATE_CHANGED", parent=parent, partner_ref=link.id_acte,
                        child_event="6-1", details={"followup_flow_id": flow.flow_id},
                        message=f"cancellation of acte {link.id_acte} requested"),
            schedule_poll(deps.codec, schema_name="ActeStatusCheck", check=check,
                          flow_id=acte_flow, member_siren=siren, status_topic=ACTS_STATUS.name,
                          wait=deps.poll_schedule[0], stage=STAGE, parent=parent),
        ]
    reply_type = followup.get("reply_type")
    document_id = followup.get("prefecture_document_id")
    reasons = reply_type_reasons(reply_type)
    if not document_id:
        reasons.append(Reason("prefecture_document_id", "required",
                              "a reply names the prefecture message it answers"))
    if not followup["documents"]:
        reasons.append(Reason("documents", "required", "a reply carries at least its letter"))
    if reasons:
        return _refuse(deps, flow, parent, reasons, "the reply was refused")
    files = [UploadFile(name=d["filename"], content=deps.blobs.open(d["sha256"]),
                        media_type=d["media_type"], size=d["size"])
             for d in followup["documents"]]
    try:
        reply_id = transaction_id_of(await connector.post_reply(
            str(document_id), str(reply_type), ReplyForm(description=followup.get("description")),
            files))
    except ValidationError as exc:
        return _refuse(deps, flow, parent, exc.reasons, f"the reply was refused: {exc.message}")
    except PartnerRefusedError as exc:
        log.info("acts.followup_refused", kind="reply", error=exc.message)
        return _refuse(deps, flow, parent, exc.reasons or [Reason("reply", "tdt_refused",
                       exc.message)], f"the TdT refused the reply: {exc.message}")
    details: dict[str, Any] = {"reply_type": str(reply_type),
                               "prefecture_document_id": str(document_id)}
    return [
        *transition(deps, flow, stage=STAGE, state="sent", previous="received",
                    kind="STATE_CHANGED", parent=parent, partner_ref=reply_id,
                    details=details, message=f"reply {reply_type} about acte {link.id_acte} sent"),
        *transition(deps, acte, stage=STAGE, state="acknowledged", previous="acknowledged",
                    kind="STATE_CHANGED", parent=parent, partner_ref=link.id_acte,
                    child_event=str(reply_type), details={**details,
                                                          "followup_flow_id": flow.flow_id},
                    message=f"the member replied ({reply_type}) about acte {link.id_acte}"),
    ]
