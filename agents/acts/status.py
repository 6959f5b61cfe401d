"""acts-status: polls the TdT for a posted acte until the prefecture has answered.

Polls wait in the delay tiers, further apart each time (5 s, 30 s, 2 min,
10 min, then hourly), so 100,000 pending actes cost about 28 requests a second
at the hourly pace. A status older than one already seen (a duplicated or
reordered reply) is ignored: a flow never moves backwards.
"""

from __future__ import annotations

from typing import Any

import structlog

from agents.acts.classification import forget_classification
from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from connectors.tdt.models import StatusResult, TransactionStatus
from relais.actes.xml_parse import parse_message
from relais.errors import Reason, RelaisError
from relais.flows.outbound import FlowContext, Outbound
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.catalogue import ACTS_STATUS

log = structlog.get_logger(__name__)
STAGE = "acts-status"
_PROGRESS = {TransactionStatus.POSTED: 1, TransactionStatus.WAITING_TRANSMISSION: 2,
             TransactionStatus.TRANSMITTED: 3}


async def _keep(deps: ActsDeps, content: bytes, filename: str, media_type: str) -> dict[str, Any]:
    """Store a partner document byte for byte; its reference goes to the member."""
    ref = await deps.blobs.put_bytes(content, media_type=media_type, filename=filename)
    return ref.to_dict()


def _stale_classification(fields: dict[str, Any]) -> bool:
    detail = str(fields.get("detail", "")).lower()
    return "classification" in detail


async def _answered(
    deps: ActsDeps, flow: FlowContext, check: dict[str, Any], result: StatusResult,
    parent: EventHeaders,
) -> list[Outbound] | None:
    """The transitions of a final status, or None when the acte is still in transit."""
    id_acte = check["id_acte"]
    if check.get("awaiting") == "cancellation":
        if result.status != TransactionStatus.CANCELLED:
            return None
    elif result.status == TransactionStatus.ACKNOWLEDGED:
        documents, details = [], {"tdt_status": str(result.status)}
        if result.document:
            documents.append(await _keep(deps, result.document, f"{id_acte}-1-2.xml",
                                         "application/xml"))
            try:
                message = parse_message(result.document)
                id_acte = message.id_acte or id_acte
                details["reception_date"] = str(message.fields.get("reception_date", ""))
            except RelaisError as exc:
                log.warning("acts.ar_unreadable", error=str(exc))
        return transition(
            deps, flow, stage=STAGE, state="acknowledged", previous="transmitted",
            kind="STATE_CHANGED", parent=parent, partner_ref=id_acte, documents=documents,
            details=details,
            message=f"the prefecture acknowledged acte {id_acte} (accusé de réception)",
        )
    if result.status == TransactionStatus.ERROR:
        documents, code, detail = [], "tdt_error", result.message or "the TdT reported an error"
        if result.document:
            documents.append(await _keep(deps, result.document, f"{id_acte}-1-3.xml",
                                         "application/xml"))
            try:
                message = parse_message(result.document)
                nature = str(message.fields.get("nature", ""))
                code = f"anomalie_{nature}" if nature else "anomalie"
                detail = str(message.fields.get("detail", "")) or detail
                if _stale_classification(message.fields):
                    await forget_classification(deps, flow.member_siren)
            except RelaisError as exc:
                log.warning("acts.anomaly_unreadable", error=str(exc))
        return transition(
            deps, flow, stage=STAGE, state="rejected", previous="transmitted",
            kind="REJECTED", parent=parent, partner_ref=id_acte, documents=documents,
            reasons=[Reason("acte", code, detail)],
            message=f"the prefecture rejected acte {id_acte}: {detail}",
        )
    if result.status == TransactionStatus.CANCELLED:
        return transition(
            deps, flow, stage=STAGE, state="cancelled", previous="acknowledged",
            kind="STATE_CHANGED", parent=parent, partner_ref=id_acte,
            message=f"acte {id_acte} was cancelled",
        )
    return None


def _next_check(
    deps: ActsDeps, check: dict[str, Any], status: int, headers: list[tuple[str, bytes]],
    flow_id: str,
) -> Outbound:
    polls = check["polls"] + 1
    schedule = deps.poll_schedule
    wait = tier(schedule[min(polls, len(schedule) - 1)])
    follow = {**check, "polls": polls, "last_status": max(status, check["last_status"])}
    return Outbound(
        wait.topic.name, flow_id.encode("utf-8"), deps.codec.encode("ActeStatusCheck", follow),
        h.replace(headers, **{h.DELAY_TARGET: ACTS_STATUS.name, h.ATTEMPT: None}),
    )


async def handle_status(record: InputRecord, deps: ActsDeps) -> list[Outbound]:
    check = deps.codec.decode(record.value or b"", expected="ActeStatusCheck").record
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or check["flow_id"]
    flow = FlowContext(flow_id, check["member_siren"], "acte", check["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    member = deps.member(check["member_siren"])
    connector = deps.connectors.for_member(member)
    result = await connector.get_status(check["transaction_id"])
    final = await _answered(deps, flow, check, result, parent)
    if final is not None:
        log.info("acts.answered", tdt_status=result.status, polls=check["polls"] + 1)
        return final
    outputs: list[Outbound] = []
    if check.get("awaiting") == "cancellation":
        return [_next_check(deps, check, min(result.status, 4), headers, flow_id)]
    progress = _PROGRESS.get(TransactionStatus(result.status), 0) if result.status in list(
        TransactionStatus) else 0
    if progress == 3 and check["last_status"] < 3:
        outputs += transition(
            deps, flow, stage=STAGE, state="transmitted", previous="posted",
            kind="STATE_CHANGED", parent=parent, partner_ref=check["id_acte"],
            message=f"acte {check['id_acte']} transmitted to the prefecture",
        )
    outputs.append(_next_check(deps, check, result.status, headers, flow_id))
    return outputs
