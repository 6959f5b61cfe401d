"""archive-delivery: build the SEDA transfer, then send the SIP exactly once.

Input ``relais.archive.submitted`` (keyed by SIREN). For one ``ArchiveSubmission``:

1. checks the submission (levels, dates, documents present in the blob store) and the
   member's archive account: a failure *rejects* the flow with reasons;
2. builds the manifest (SEDA 2.1 or 2.2 per the account's ``seda_version``) from one read
   of each blob (SHA-512, size, format) and validates it against the official schema off
   the event loop: a manifest that fails is a bug, the record is dead-lettered with the
   schema's errors (``ManifestInvalidError``);
3. sends the SIP zip, streamed from the blob store (a second read of each blob, never
   whole in memory) through :func:`relais.journal.deliver.deliver_exactly_once`: the intent
   (POSTING, key ``message_identifier``) is acknowledged before the upload. An upload cut
   before Vitam's answer is **reconciled** with the archive's logbook (``obIdIn`` = the
   MessageIdentifier) and never re-sent blindly: found, the flow goes on with that
   operation; absent for longer than the account's ``reconcile_grace_s`` (120 s), it is sent again;
   absent for less, the record waits along the retry tiers (the archive may still be
   reading the manifest).
4. outcome: *transferred* (partner reference = the operation id) and the first status
   poll on the delay tiers; or *archive-rejected* with the archive's reasons (an
   immediate KO ATR, e.g. an unknown workflow); or *uncertain*.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agents.archive.deps import ArchiveDeps
from agents.archive.machines import ARCHIVE_REJECTED, BY_TYPE
from agents.archive.transfer import submission_reasons, transfer_spec
from connectors.archive.settings import ARCHIVE, ArchiveSettings
from relais.errors import ConfigurationError, PartnerTransientError, Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.journal.deliver import (
    AlreadyDone,
    Delivered,
    Journal,
    Refused,
    Uncertain,
    deliver_exactly_once,
    entry_outbound,
)
from relais.journal.entry import JournalEntry
from relais.journal.polls import schedule_poll
from relais.seda.package import prepare_sip
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.archive import ARCHIVE_STATUS

log = structlog.get_logger(__name__)
STAGE = "archive-delivery"


class LogbookNotYetError(PartnerTransientError):
    """An interrupted upload is not in the archive's logbook yet: wait, do not re-send."""

    code = "archive_logbook_pending"


async def _blob_reasons(deps: ArchiveDeps, submission: dict[str, Any]) -> list[Reason]:
    reasons = []
    for index, document in enumerate(submission.get("documents") or []):
        blob = document["blob"]
        size = await deps.blobs.stat(str(blob["sha256"]))
        if size is None:
            reasons.append(Reason(f"documents[{index}].blob.sha256", "blob_not_found",
                                  f"no blob with digest {blob['sha256']}"))
    return reasons


def _reject(deps: ArchiveDeps, flow: FlowContext, parent: EventHeaders,
            reasons: list[Reason], message: str) -> list[Outbound]:
    log.info("archive.rejected", fields=[r.field for r in reasons])
    return emit(deps.codec, flow, machine_for(BY_TYPE, "archive"), stage=STAGE,
                state="rejected", previous="received", kind="REJECTED", message=message,
                parent=parent, reasons=reasons)


def _reconciler(deps: ArchiveDeps, archive: Any, entry: JournalEntry,
                message_identifier: str, grace: float) -> Any:
    async def reconcile() -> str | None:
        found = await archive.find_operation(message_identifier)
        if found is not None:
            return str(found.operation_id)
        current = deps.journal.get(entry.flow_id) or entry
        since = current.updated_at or datetime.now(UTC)
        if datetime.now(UTC) - since < timedelta(seconds=grace):
            raise LogbookNotYetError(
                f"transfer {message_identifier} is not in the archive's logbook yet; an "
                f"upload may be under way there: not re-sent before {grace:.0f} s",
                partner=ARCHIVE)
        return None

    return reconcile


async def handle_submitted(record: InputRecord, deps: ArchiveDeps) -> list[Outbound]:
    """Build and send one transfer (see the module docstring)."""
    submission = deps.codec.decode(record.value or b"", expected="ArchiveSubmission").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or str(submission["member_siren"])
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    flow = FlowContext(flow_id, siren, "archive", str(submission["submission_id"]))
    parent = EventHeaders.from_kafka(headers)
    member = deps.member(siren)
    account = member.account(ARCHIVE)
    if account is None:
        return _reject(deps, flow, parent, [Reason("member_siren", "no_archive",
                                                   f"member {siren} has no archive account")],
                       "the transfer cannot be sent: no archive is configured for the member")
    try:
        settings = ArchiveSettings.from_account(account, siren)
    except ConfigurationError as exc:
        return _reject(deps, flow, parent, [Reason("archive", "configuration", exc.message)],
                       f"the member's archive account is incomplete: {exc.message}")
    reasons = submission_reasons(submission) + await _blob_reasons(deps, submission)
    if reasons:
        return _reject(deps, flow, parent, reasons, "the transfer was refused before sending")
    message_identifier = flow_id
    entry = deps.journal.get(flow_id) or JournalEntry(
        flow_id=flow_id, flow_type="archive", member_siren=siren, partner=ARCHIVE,
        step="VALIDATED", idempotency_key=message_identifier, account=account.url,
        keys={"message_identifier": message_identifier},
    )
    if entry.step in ("POSTED", "UNCERTAIN", "REFUSED"):
        log.info("archive.delivery_skipped", flow_id=flow_id, step=entry.step)
        return []
    sip = await prepare_sip(transfer_spec(submission, settings, message_identifier),
                            deps.blobs.open, now=datetime.now(UTC))
    archive = deps.archives.for_member(member)
    journal = Journal(view=deps.journal, publisher=deps.publisher, stage=STAGE)

    async def call() -> str:
        log.info("archive.upload_started", flow_id=flow_id, bytes=sip.length)
        return await archive.upload(sip.stream(), sip.length,
                                    message_identifier=message_identifier)

    outcome = await deliver_exactly_once(
        entry, journal=journal, call=call,
        reconcile=_reconciler(deps, archive, entry, message_identifier,
                              settings.reconcile_grace_seconds), parent=parent)
    machine = machine_for(BY_TYPE, "archive")
    if isinstance(outcome, AlreadyDone):
        return []
    out = [entry_outbound(deps.codec, outcome.entry, stage=STAGE, parent=parent)]
    if isinstance(outcome, Refused):
        why = outcome.error.message
        return out + emit(deps.codec, flow, machine, stage=STAGE, state=ARCHIVE_REJECTED,
                          previous="received", kind="REJECTED", parent=parent,
                          reasons=[Reason("archive", outcome.error.code, why)],
                          message=f"the archive refused the transfer: {why}")
    if isinstance(outcome, Uncertain):
        return out + emit(deps.codec, flow, machine, stage=STAGE, state="uncertain",
                          previous="received", kind="FAILED", parent=parent,
                          reasons=[Reason("archive", "uncertain", outcome.why)],
                          message="the archive cannot tell whether the transfer arrived; "
                                  f"an operator must check: {outcome.why}")
    assert isinstance(outcome, Delivered)
    operation_id = outcome.entry.partner_ref or ""
    log.info("archive.transferred", flow_id=flow_id, operation_id=operation_id,
             reconciled=outcome.reconciled, bytes=sip.length,
             objects=len(sip.transfer.files()))
    check = {"flow_id": flow_id, "member_siren": siren,
             "submission_id": str(submission["submission_id"]), "operation_id": operation_id,
             "message_identifier": message_identifier, "polls": 0,
             "posted_at": datetime.now(UTC)}
    return [
        *out,
        *emit(deps.codec, flow, machine, stage=STAGE, state="transferred", previous="received",
              kind="STATE_CHANGED", parent=parent, partner_ref=operation_id,
              details={"message_identifier": message_identifier, "operation_id": operation_id,
                       "seda_version": settings.seda_version.value,
                       "objects": str(len(sip.transfer.files())), "bytes": str(sip.length)},
              message=f"the archive received transfer {message_identifier} "
                      f"(operation {operation_id}); its checks follow"),
        schedule_poll(deps.codec, schema_name="ArchiveStatusCheck", check=check,
                      flow_id=flow_id, member_siren=siren, status_topic=ARCHIVE_STATUS.name,
                      wait=deps.poll_schedule[0], stage=STAGE, parent=parent),
    ]
