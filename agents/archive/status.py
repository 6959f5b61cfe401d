"""archive-status: follow the archive's operation until its ATR says archived or rejected.

Input ``relais.archive.status`` (``ArchiveStatusCheck``, from the delay tiers). Each poll
asks the operation's state (``HEAD``); once completed, the ATR is fetched and read
(leniently, off the event loop) and correlated by the operation id (an early failure's
ATR has an empty ``MessageRequestIdentifier``) and by ``MessageRequestIdentifier`` where
present (a different one is an error, not a result). Outcomes:

- OK / WARNING → *archived*, with the archive's system ids of each unit and object in
  the details (``unit.<SIP id>``, ``object.<SIP id>``) and the raw ATR kept as a blob
  attached to the notification;
- KO → *archive-rejected*, the failing events as reasons (e.g. ``CHECK_DIGEST``);
- PAUSE/FATAL → *failed*: the operation will never complete without an administrator,
  reported instead of polled for ever; likewise after ``max_polls`` polls.
"""

from __future__ import annotations

from typing import Any

import structlog

from agents.archive.deps import ArchiveDeps
from agents.archive.machines import ARCHIVE_REJECTED, BY_TYPE
from relais.errors import PartnerReplyError, Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.journal.polls import next_poll
from relais.seda.reply import SedaReply
from relais.stages.records import InputRecord
from relais.wire.headers import EventHeaders
from topics.archive import ARCHIVE_STATUS

log = structlog.get_logger(__name__)
STAGE = "archive-status"
MAX_DETAIL_IDS = 500


def _again(deps: ArchiveDeps, check: dict[str, Any],
           headers: list[tuple[str, bytes]]) -> Outbound:
    polls = int(check["polls"]) + 1
    schedule = deps.poll_schedule
    wait = schedule[min(polls, len(schedule) - 1)]
    return next_poll(deps.codec, schema_name="ArchiveStatusCheck",
                     check={**check, "polls": polls}, flow_id=str(check["flow_id"]),
                     status_topic=ARCHIVE_STATUS.name, wait=wait, headers=headers)


def _failed(deps: ArchiveDeps, flow: FlowContext, parent: EventHeaders, operation_id: str,
            code: str, message: str) -> list[Outbound]:
    log.warning("archive.operation_failed", operation_id=operation_id, code=code)
    return emit(deps.codec, flow, machine_for(BY_TYPE, "archive"), stage=STAGE, state="failed",
                previous="transferred", kind="FAILED", parent=parent, partner_ref=operation_id,
                reasons=[Reason("archive", code, message)], message=message)


async def _outcome(deps: ArchiveDeps, flow: FlowContext, check: dict[str, Any],
                   reply: SedaReply, parent: EventHeaders) -> list[Outbound]:
    operation_id = str(check["operation_id"])
    machine = machine_for(BY_TYPE, "archive")
    expected = str(check["message_identifier"])
    if reply.message_request_identifier not in (None, expected):
        raise PartnerReplyError(
            f"the ATR of operation {operation_id} answers {reply.message_request_identifier!r}, "
            f"not transfer {expected!r}", partner="archive")
    ref = await deps.blobs.put_bytes(reply.raw, media_type="application/xml",
                                     filename=f"ATR-{operation_id}.xml", owner=flow.member_siren)
    documents = [ref.to_dict()] if hasattr(ref, "to_dict") else []
    if reply.accepted:
        details = {"operation_id": operation_id, "reply_code": reply.reply_code or "",
                   "message_identifier": expected}
        for sip_id, system_id in list(reply.unit_ids.items())[:MAX_DETAIL_IDS]:
            details[f"unit.{sip_id}"] = system_id
        for sip_id, system_id in list(reply.object_ids.items())[:MAX_DETAIL_IDS]:
            details[f"object.{sip_id}"] = system_id
        warnings = [e.describe() for e in reply.events if (e.outcome or "").upper() == "WARNING"]
        if warnings:
            details["warnings"] = "; ".join(warnings)[:1000]
        log.info("archive.archived", operation_id=operation_id, units=len(reply.unit_ids),
                 objects=len(reply.object_ids), reply_code=reply.reply_code)
        return emit(deps.codec, flow, machine, stage=STAGE, state="archived",
                    previous="transferred", kind="STATE_CHANGED", parent=parent,
                    partner_ref=operation_id, documents=documents, details=details,
                    message=f"the archive holds transfer {expected} (ReplyCode "
                            f"{reply.reply_code}, {len(reply.unit_ids)} units, "
                            f"{len(reply.object_ids)} objects)")
    reasons = [Reason("archive", e.type_code or "event", e.describe())
               for e in reply.failed_events()] or [
        Reason("archive", "reply_code", f"ReplyCode {reply.reply_code or '(none)'}")]
    log.info("archive.archive_rejected", operation_id=operation_id,
             codes=[r.code for r in reasons])
    return emit(deps.codec, flow, machine, stage=STAGE, state=ARCHIVE_REJECTED,
                previous="transferred", kind="REJECTED", parent=parent,
                partner_ref=operation_id, documents=documents, reasons=reasons,
                details={"operation_id": operation_id, "reply_code": reply.reply_code or ""},
                message="the archive rejected the transfer: "
                        + "; ".join(r.message for r in reasons))


async def handle_status(record: InputRecord, deps: ArchiveDeps) -> list[Outbound]:
    check = deps.codec.decode(record.value or b"", expected="ArchiveStatusCheck").record
    headers = list(record.headers or ())
    flow = FlowContext(str(check["flow_id"]), str(check["member_siren"]), "archive",
                       str(check["submission_id"]))
    parent = EventHeaders.from_kafka(headers)
    operation_id = str(check["operation_id"])
    archive = deps.archives.for_member(deps.member(flow.member_siren))
    state = await archive.operation(operation_id)
    if state.stuck:
        return _failed(deps, flow, parent, operation_id, "archive_operation_fatal",
                       f"the archive's operation {operation_id} stopped FATAL (paused): it "
                       "needs the archive's administrator; no reply will come until then")
    if state.completed:
        reply = await archive.transfer_reply(operation_id)
        if reply is not None:
            return await _outcome(deps, flow, check, reply, parent)
    if int(check["polls"]) + 1 >= deps.max_polls:
        return _failed(deps, flow, parent, operation_id, "archive_operation_unfinished",
                       f"the archive's operation {operation_id} is still {state.state}/"
                       f"{state.status} after {check['polls']} polls: reported, no longer "
                       "polled")
    return [_again(deps, check, headers)]
