"""acts-status: polls the TdT for a posted acte until the prefecture has answered.

Polls wait in the delay tiers, further apart each time (5 s, 30 s, 2 min,
10 min, then hourly), so 100,000 pending actes cost about 28 requests a second
at the hourly pace. A status older than one already seen (a duplicated or
reordered reply) is ignored: a flow never moves backwards.

An acte the TdT holds in state 17 (waiting to be posted) or 18 (waiting to be
signed) is not transmitted until someone acts at the TdT: the member is told
once, with what the TdT waits for, and polling goes on along the tiers.

Once an acte is acknowledged, the préfecture-stamped PDF is fetched from the
TdT (a check with ``awaiting = "stamp"``), stored as a blob and delivered to
the member once, as a ``PARTNER_MESSAGE`` whose ``details["document"]`` is
``stamped_acte`` (the flow's state stays *acknowledged*). When the TdT has none
yet, the fetch is tried again along the poll tiers, at most ``stamp_attempts``
times (twice as many while the TdT fails transiently); then the member is told
that no stamped copy is available. The
acknowledgement itself never waits for it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import structlog

from agents.acts.classification import forget_classification
from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from connectors.tdt.models import StatusResult, TransactionStatus
from relais.actes.xml_parse import parse_message
from relais.errors import PartnerRefusedError, Reason, RelaisError
from relais.flows.outbound import FlowContext, Outbound
from relais.journal.polls import next_poll
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.acts import ACTS_STATUS

log = structlog.get_logger(__name__)
STAGE = "acts-status"
#: How far along the transmission each non-final state is; states 17/18 come before
#: the post (they are on the same step as 1), other states do not count.
_PROGRESS = {TransactionStatus.WAITING_SIGNATURE: 1, TransactionStatus.WAITING_POST: 1,
             TransactionStatus.POSTED: 1, TransactionStatus.WAITING_TRANSMISSION: 2,
             TransactionStatus.TRANSMITTED: 3}
#: What the TdT waits for in the states where a person must act at the TdT.
_HELD = {
    TransactionStatus.WAITING_POST: "waiting to be posted: someone must confirm the "
    "sending in the TdT's own interface",
    TransactionStatus.WAITING_SIGNATURE: "waiting to be signed: someone must sign it in the "
    "TdT's own interface before it is sent",
}
STAMP = "stamp"


async def _keep(
    deps: ActsDeps, flow: FlowContext, content: bytes, filename: str, media_type: str,
) -> dict[str, Any]:
    """Store a partner document byte for byte, owned by the flow's member (who may then
    fetch it from the blob API); its reference goes to the member."""
    ref = await deps.blobs.put_bytes(content, media_type=media_type, filename=filename,
                                     owner=flow.member_siren)
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
            documents.append(await _keep(deps, flow, result.document, f"{id_acte}-1-2.xml",
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
            documents.append(await _keep(deps, flow, result.document, f"{id_acte}-1-3.xml",
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


def _progress(status: int) -> int:
    return _PROGRESS.get(TransactionStatus(status), 0) if status in _STATES else 0


_STATES = frozenset(int(s) for s in TransactionStatus)


def _furthest(status: int, last: int) -> int:
    """The status to remember: the new one unless it is behind the last one seen."""
    return status if _progress(status) >= _progress(last) else last


def _next_check(
    deps: ActsDeps, check: dict[str, Any], last_status: int, headers: list[tuple[str, bytes]],
    flow_id: str, **changes: Any,
) -> Outbound:
    polls = check["polls"] + 1
    schedule = deps.poll_schedule
    wait = schedule[min(polls, len(schedule) - 1)]
    follow = {**check, "polls": polls, "last_status": last_status, **changes}
    return next_poll(deps.codec, schema_name="ActeStatusCheck", check=follow, flow_id=flow_id,
                     status_topic=ACTS_STATUS.name, wait=wait, headers=headers)


def _stamp_check(
    deps: ActsDeps, check: dict[str, Any], headers: list[tuple[str, bytes]], flow_id: str,
) -> Outbound:
    """The first fetch of the stamped acte, one poll tier after the acknowledgement."""
    follow = {**check, "polls": 0, "last_status": int(TransactionStatus.ACKNOWLEDGED),
              "awaiting": STAMP}
    return next_poll(deps.codec, schema_name="ActeStatusCheck", check=follow, flow_id=flow_id,
                     status_topic=ACTS_STATUS.name, wait=deps.poll_schedule[0],
                     headers=headers)


async def _stamped(
    deps: ActsDeps, flow: FlowContext, check: dict[str, Any], headers: list[tuple[str, bytes]],
    parent: EventHeaders,
) -> list[Outbound]:
    """Fetch the stamped acte: deliver it once, try again later, or say there is none.

    Whatever the TdT answers, the acknowledgement stands: no error leaves here
    (a failure would dead-letter the check and mark an acknowledged flow failed).
    """
    id_acte, transaction_id = check["id_acte"], check["transaction_id"]
    attempt = check["polls"] + 1
    try:
        member = deps.member(check["member_siren"])
        # streamed from the TdT into the blob store: a 150 MB acte is never whole in memory
        ref = await deps.connectors.for_member(member).save_stamped_acte(
            transaction_id, partial(deps.blobs.put_stream, media_type="application/pdf",
                                    filename=f"{id_acte}-tampon.pdf", owner=flow.member_siren))
    except RelaisError as exc:
        why = exc.message
        if isinstance(exc, PartnerRefusedError):
            why = f"the TdT has no stamped copy yet: {exc.message}"
        # "not available yet" gets stamp_attempts tries; a TdT failing transiently (5xx,
        # timeouts) twice as many, so a flaky TdT rarely costs the member its copy
        budget = deps.stamp_attempts * (2 if exc.retriable else 1)
        if (exc.retriable or isinstance(exc, PartnerRefusedError)) and attempt < budget:
            log.info("acts.stamp_not_yet", attempt=attempt, error=exc.message)
            return [_next_check(deps, check, check["last_status"], headers, flow.flow_id)]
        log.warning("acts.stamp_unavailable", attempts=attempt, error=exc.message)
        return transition(
            deps, flow, stage=STAGE, state="acknowledged", previous="acknowledged",
            kind="PARTNER_MESSAGE", parent=parent, partner_ref=id_acte,
            child_event="stamped-acte-unavailable",
            reasons=[Reason("stamped_acte", "unavailable", why)],
            details={"document": "stamped_acte", "transaction_id": transaction_id,
                     "attempts": str(attempt)},
            message=f"no stamped copy of acte {id_acte} is available from the TdT after "
            f"{attempt} attempt(s); the acknowledgement stands",
        )
    log.debug("acts.stamp_delivered", sha256=ref.sha256, size=ref.size)
    return transition(
        deps, flow, stage=STAGE, state="acknowledged", previous="acknowledged",
        kind="PARTNER_MESSAGE", parent=parent, partner_ref=id_acte, child_event="stamped-acte",
        documents=[ref.to_dict()],
        details={"transaction_id": transaction_id, "document": "stamped_acte"},
        message=f"the stamped copy of acte {id_acte} (tampon de la préfecture) is attached",
    )


def _held_notice(
    deps: ActsDeps, flow: FlowContext, check: dict[str, Any], status: int,
    parent: EventHeaders,
) -> list[Outbound]:
    """Tell the member once that the TdT holds the acte until someone acts there."""
    waits = _HELD[TransactionStatus(status)]
    return transition(
        deps, flow, stage=STAGE, state="posted", previous="posted", kind="STATE_CHANGED",
        parent=parent, partner_ref=check["id_acte"], child_event=f"tdt-state-{status}",
        details={"tdt_status": str(status), "transaction_id": check["transaction_id"]},
        message=f"acte {check['id_acte']} is held by the TdT (state {status}), {waits}; "
        "Relais keeps checking and tells you when it is transmitted",
    )


async def handle_status(record: InputRecord, deps: ActsDeps) -> list[Outbound]:
    check = deps.codec.decode(record.value or b"", expected="ActeStatusCheck").record
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or check["flow_id"]
    flow = FlowContext(flow_id, check["member_siren"], "acte", check["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    if check.get("awaiting") == STAMP:
        return await _stamped(deps, flow, check, headers, parent)
    member = deps.member(check["member_siren"])
    connector = deps.connectors.for_member(member)
    result = await connector.get_status(check["transaction_id"])
    final = await _answered(deps, flow, check, result, parent)
    if final is not None:
        log.debug("acts.answered", tdt_status=result.status, polls=check["polls"] + 1)
        if result.status == TransactionStatus.ACKNOWLEDGED \
                and check.get("awaiting") != "cancellation":
            final.append(_stamp_check(deps, check, headers, flow_id))
        return final
    if check.get("awaiting") == "cancellation":
        return [_next_check(deps, check, min(result.status, 4), headers, flow_id)]
    outputs: list[Outbound] = []
    last = check["last_status"]
    if result.status in _STATES and TransactionStatus(result.status) in _HELD \
            and result.status != last and _progress(last) <= 1:
        log.info("acts.held_by_tdt", tdt_status=result.status)
        outputs += _held_notice(deps, flow, check, result.status, parent)
    if _progress(result.status) == 3 and _progress(last) < 3:
        outputs += transition(
            deps, flow, stage=STAGE, state="transmitted", previous="posted",
            kind="STATE_CHANGED", parent=parent, partner_ref=check["id_acte"],
            message=f"acte {check['id_acte']} transmitted to the prefecture",
        )
    outputs.append(_next_check(deps, check, _furthest(result.status, last), headers, flow_id))
    return outputs
