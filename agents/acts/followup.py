"""acts-followup: a member's cancellation (6-1) or reply to a prefecture message, sent to
the TdT against the acte it is about.

A cancellation is sent with ``cancel`` and the acte's status is polled again
until the prefecture's ARAnnulation (6-2) makes it *cancelled*. A reply goes
with ``post_reply`` against the prefecture message it answers. Both calls carry
an idempotency key derived from the follow-up's own flow id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from connectors.tdt.models import ReplyForm, UploadFile
from relais.errors import PartnerPermanentError, Reason, ValidationError
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, Outbound
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.catalogue import ACTS_STATUS

log = structlog.get_logger(__name__)
STAGE = "acts-followup"
REPLY_TYPES = ("2-2", "3-2", "3-3", "3-4", "4-2", "4-3", "4-4")


def _refuse(deps: ActsDeps, flow: FlowContext, parent: EventHeaders, reasons: list[Reason],
            message: str) -> list[Outbound]:
    return transition(deps, flow, stage=STAGE, state="rejected", previous="received",
                      kind="REJECTED", parent=parent, reasons=reasons, message=message)


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
    key = f"{flow.flow_id}:{followup['kind'].lower()}"
    acte = FlowContext(acte_flow, siren, "acte", link.submission_id)
    if followup["kind"] == "CANCELLATION":
        try:
            result = await connector.cancel(link.transaction_id, idempotency_key=key)
        except PartnerPermanentError as exc:
            if exc.status != 400:
                raise
            return _refuse(deps, flow, parent, exc.reasons or [Reason("acte", "tdt_refused",
                           exc.message)], f"the TdT refused the cancellation: {exc.message}")
        check = {
            "flow_id": acte_flow, "member_siren": siren, "submission_id": link.submission_id,
            "id_acte": link.id_acte, "transaction_id": link.transaction_id, "polls": 0,
            "last_status": 4, "posted_at": datetime.now(UTC), "awaiting": "cancellation",
        }
        first = tier(deps.poll_schedule[0])
        check_headers = h.replace(
            EventHeaders.new(source=f"/relais/hub/{STAGE}", type="fr.relais.acts.ActeStatusCheck",
                             subject=acte_flow, flow_id=acte_flow, parent=parent).to_kafka(),
            **{h.MEMBER: siren, h.DELAY_TARGET: ACTS_STATUS.name},
        )
        return [
            *transition(deps, flow, stage=STAGE, state="sent", previous="received",
                        kind="STATE_CHANGED", parent=parent, partner_ref=result.transaction_id,
                        message=f"cancellation of acte {link.id_acte} sent to the TdT (6-1)"),
            *transition(deps, acte, stage=STAGE, state="acknowledged", previous="acknowledged",
                        kind="STATE_CHANGED", parent=parent, partner_ref=link.id_acte,
                        child_event="6-1", details={"followup_flow_id": flow.flow_id},
                        message=f"cancellation of acte {link.id_acte} requested"),
            Outbound(first.topic.name, acte_flow.encode(),
                     deps.codec.encode("ActeStatusCheck", check), check_headers),
        ]
    reply_type = followup.get("reply_type")
    document_id = followup.get("prefecture_document_id")
    reasons = []
    if reply_type not in REPLY_TYPES:
        reasons.append(
            Reason("reply_type", "unknown_reply_type", f"one of {', '.join(REPLY_TYPES)}")
        )
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
        result = await connector.post_reply(
            str(document_id), str(reply_type), ReplyForm(description=followup.get("description")),
            files, idempotency_key=key)
    except ValidationError as exc:
        return _refuse(deps, flow, parent, exc.reasons, f"the reply was refused: {exc.message}")
    except PartnerPermanentError as exc:
        if exc.status not in (400, 404):
            raise
        return _refuse(deps, flow, parent, exc.reasons or [Reason("reply", "tdt_refused",
                       exc.message)], f"the TdT refused the reply: {exc.message}")
    details: dict[str, Any] = {"reply_type": str(reply_type),
                               "prefecture_document_id": str(document_id)}
    return [
        *transition(deps, flow, stage=STAGE, state="sent", previous="received",
                    kind="STATE_CHANGED", parent=parent, partner_ref=result.transaction_id,
                    details=details, message=f"reply {reply_type} about acte {link.id_acte} sent"),
        *transition(deps, acte, stage=STAGE, state="acknowledged", previous="acknowledged",
                    kind="STATE_CHANGED", parent=parent, partner_ref=link.id_acte,
                    child_event=str(reply_type), details={**details,
                                                          "followup_flow_id": flow.flow_id},
                    message=f"the member replied ({reply_type}) about acte {link.id_acte}"),
    ]
