"""signature-status: reads a dossier's history once per record; never sleeps.

Input ``relais.signature.status`` (``SignatureCheck`` records the delay tiers hand over
when due). One ``GetHistoDossier`` per record, then :func:`agents.signature.decisions.decide`:

- still in the circuit: the check waits on the next delay tier (5 s, 30 s, 2 min… as the
  acts' status polls); past the dossier's ``DateLimite`` the member is told once;
- signed: :func:`agents.signature.collect.collect_signature` (GetDossier → blob store →
  journal entry ``<flow>/iparapheur`` with the signature's blob, acknowledged →
  ArchiverDossier), then in the stage transaction the flow is ``signed`` and the acte goes
  on to ``relais.acts.delivery``, where acts-delivery sends it with its signature;
- rejected: the rejection is journalled (acknowledged), the dossier erased, and the flow
  is ``rejected`` with the annotation and the name of who refused it;
- gone from i-Parapheur: only after a journalled signature (an earlier attempt archived
  it); otherwise a permanent failure.

A record whose journal entry already holds the outcome (a worker died after journalling,
before its transaction) finishes from the journal: archives again (harmless) and
publishes the same records (same event ids).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog

from agents.signature.collect import StoredSignature, archive_recorded, close_rejected
from agents.signature.collect import collect_signature as collect
from agents.signature.decisions import Fetch, Missing, Rejected, Wait, decide
from agents.signature.deps import SignatureDeps
from agents.signature.events import transition
from agents.signature.settings import PARTNER, member_settings
from relais.errors import InfrastructureError, PartnerPermanentError, Reason
from relais.flows.outbound import FlowContext, Outbound
from relais.journal.deliver import Journal, entry_outbound
from relais.journal.entry import JournalEntry
from relais.journal.polls import next_poll
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import EventHeaders
from topics.acts import ACTS_DELIVERY
from topics.signature import SIGNATURE_STATUS

log = structlog.get_logger(__name__)
STAGE = "signature-status"
SIGNED = "signed"
REJECTED = "rejected"


def signature_keys(stored: StoredSignature) -> dict[str, str]:
    """What the journal entry keeps of a collected signature (blob refs)."""
    keys = {"outcome": SIGNED}
    for name, ref in (("signature", stored.signature), ("signed_file", stored.signed_file),
                      ("bordereau", stored.bordereau)):
        if ref is not None:
            keys |= {f"{name}_sha256": ref.sha256, f"{name}_size": str(ref.size),
                     f"{name}_media_type": ref.media_type, f"{name}_filename": ref.filename}
    return keys


def _wait(deps: SignatureDeps, check: dict[str, Any], headers: list[tuple[str, bytes]],
          **changes: Any) -> Outbound:
    polls = check["polls"] + 1
    schedule = deps.poll_schedule
    follow = {**check, "polls": polls, **changes}
    return next_poll(deps.codec, schema_name="SignatureCheck", check=follow,
                     flow_id=check["flow_id"], status_topic=SIGNATURE_STATUS.name,
                     wait=schedule[min(polls, len(schedule) - 1)], headers=headers)


def _signed_outputs(deps: SignatureDeps, flow: FlowContext, check: dict[str, Any],
                    entry: JournalEntry, parent: EventHeaders) -> list[Outbound]:
    """The flow ``signed`` and the acte on its way to the TdT."""
    forward_headers = h.replace(
        EventHeaders.new(source=f"/relais/hub/{STAGE}", type="fr.relais.acts.ActeSubmission",
                         subject=flow.flow_id, flow_id=flow.flow_id, parent=parent).to_kafka(),
        **{h.MEMBER: flow.member_siren},
    )
    return [
        entry_outbound(deps.codec, entry, stage=STAGE, parent=parent),
        *transition(deps, flow, stage=STAGE, state=SIGNED, previous="signing",
                    kind="STATE_CHANGED", parent=parent, partner_ref=check["dossier_id"],
                    message="the acte was signed in i-Parapheur; it goes on to the TdT",
                    details={"dossier_id": check["dossier_id"]}),
        Outbound(ACTS_DELIVERY.name, flow.flow_id.encode("utf-8"), check["submission"],
                 forward_headers),
    ]


def _rejected_outputs(deps: SignatureDeps, flow: FlowContext, check: dict[str, Any],
                      entry: JournalEntry, parent: EventHeaders) -> list[Outbound]:
    annotation = entry.key("annotation") or "rejected without an annotation"
    actor = entry.key("actor") or "an unnamed actor"
    by = entry.key("rejected_by") or "other"
    return [
        entry_outbound(deps.codec, entry, stage=STAGE, parent=parent),
        *transition(
            deps, flow, stage=STAGE, state="rejected", previous="signing", kind="REJECTED",
            parent=parent, partner_ref=check["dossier_id"],
            message=f"{actor} rejected the acte in i-Parapheur: {annotation}",
            reasons=[Reason("signature", f"rejected_by_{by}", annotation)],
            details={"dossier_id": check["dossier_id"], "annotation": annotation,
                     "signer": actor, "rejected_by": by},
        ),
    ]


async def handle_check(record: InputRecord, deps: SignatureDeps) -> list[Outbound]:
    check = deps.codec.decode(record.value or b"", expected="SignatureCheck").record
    headers = list(record.headers or ())
    flow = FlowContext(check["flow_id"], check["member_siren"], check["flow_type"],
                       check["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    dossier_id = check["dossier_id"]
    entry = deps.journal_view.get(flow.flow_id, PARTNER)
    if entry is None:
        raise InfrastructureError(f"the signature journal of flow {flow.flow_id} is not "
                                  "visible yet")
    member = deps.member(flow.member_siren)
    connector = deps.connectors.for_member(member)
    settings = member_settings(member, flow.flow_type)
    archive_action = settings.archive_action if settings else "EFFACER"
    journal = Journal(view=deps.journal_view, publisher=deps.journal, stage=STAGE)
    if entry.key("outcome") == SIGNED:  # journalled by an earlier attempt
        await archive_recorded(connector, dossier_id, action=archive_action)
        return _signed_outputs(deps, flow, check, entry, parent)
    if entry.key("outcome") == REJECTED:
        return _rejected_outputs(deps, flow, check, entry, parent)
    status = await connector.get_status(dossier_id)
    decision = decide(status, deadline=check["deadline"], today=date.today())
    bound = log.bind(flow_id=flow.flow_id, dossier_id=dossier_id)
    match decision:
        case Wait(status=last, overdue=overdue):
            outputs: list[Outbound] = []
            report = overdue and not check["overdue_reported"]
            if report:
                bound.info("signature.overdue", deadline=str(check["deadline"]))
                outputs += transition(
                    deps, flow, stage=STAGE, state="signing", previous="signing",
                    kind="PARTNER_MESSAGE", parent=parent, partner_ref=dossier_id,
                    child_event="signature_overdue",
                    message=f"the acte is still not signed in i-Parapheur, past its deadline "
                    f"{check['deadline']} (last step: {last or 'unknown'})",
                    details={"dossier_id": dossier_id, "deadline": str(check["deadline"])},
                )
            outputs.append(_wait(deps, check, headers, last_status=last,
                                 overdue_reported=check["overdue_reported"] or report))
            return outputs
        case Fetch():
            signed_entry: list[JournalEntry] = []

            async def record_signed(stored: StoredSignature) -> None:
                moved = entry.moved("POSTED", keys={**entry.keys, **signature_keys(stored)})
                await journal.publish_acknowledged(moved, parent)
                signed_entry.append(moved)

            await collect(connector, deps.blobs, dossier_id, owner=flow.member_siren,
                          record=record_signed, archive_action=archive_action)
            bound.info("signature.signed")
            return _signed_outputs(deps, flow, check, signed_entry[0], parent)
        case Rejected(annotation=annotation, actor=actor, by=by):
            rejected = entry.moved("POSTED", keys={
                **entry.keys, "outcome": REJECTED, "annotation": annotation[:2000],
                "actor": (actor or "")[:200], "rejected_by": by})

            async def record_rejected() -> None:
                await journal.publish_acknowledged(rejected, parent)

            await close_rejected(connector, dossier_id, record=record_rejected)
            bound.info("signature.rejected", by=by)
            return _rejected_outputs(deps, flow, check, rejected, parent)
        case Missing():
            raise PartnerPermanentError(
                f"i-Parapheur no longer holds dossier {dossier_id} and no signature was "
                "journalled for it", partner=PARTNER)
    return []
