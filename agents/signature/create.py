"""signature-create: a validated acte becomes a dossier in its member's i-Parapheur, once.

Input ``relais.signature.requests`` (the ``ActeSubmission`` acts-validation forwards for a
member whose i-Parapheur signs its actes). The ``CreerDossier`` goes through the delivery
journal (:func:`relais.journal.deliver.deliver_exactly_once`, entry ``<flow>/iparapheur``)
with a ``DossierID`` derived from the flow id, so a retried create never makes a second
dossier: i-Parapheur refuses a duplicate id (read as already created) and a create whose
outcome is unknown is settled with ``RechercherDossiers`` first. Once created, the flow is
``signing`` and its first history poll waits on the first delay tier (the shared poll
scheduler, :func:`relais.journal.polls.schedule_poll`), bound for ``relais.signature.status``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import structlog

from agents.signature.deps import Parapheur, SignatureDeps
from agents.signature.events import transition
from agents.signature.requests import acte_dossier
from agents.signature.settings import PARTNER, SignatureSettings, member_settings
from connectors.iparapheur.ids import dossier_id_for
from connectors.iparapheur.models import Annex, SignatureState
from relais.errors import Reason, ValidationError
from relais.flows.outbound import FlowContext, Outbound
from relais.journal.deliver import (
    Delivered,
    Journal,
    Refused,
    Uncertain,
    deliver_exactly_once,
    entry_outbound,
)
from relais.journal.entry import DONE, JournalEntry
from relais.journal.polls import schedule_poll
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.acts import ACTS_DELIVERY
from topics.signature import SIGNATURE_STATUS

log = structlog.get_logger(__name__)
STAGE = "signature-create"
FLOW_TYPE = "acte"
_NAME_OUTSIDE = re.compile(r"[^\w@.(){}\-_]")


async def read_blob(deps: SignatureDeps, sha256: str, *, limit: int) -> bytes:
    """A document's bytes from the blob store, refused past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in deps.blobs.open(sha256):
        size += len(chunk)
        if size > limit:
            raise ValidationError(f"blob {sha256} is larger than {limit} bytes",
                                  reasons=[Reason("document", "too_large", "too large to sign")])
        parts.append(bytes(chunk))
    return b"".join(parts)


def annex_name(filename: str, index: int) -> str:
    """An annex name i-Parapheur accepts (its ``DossierID``-shaped names)."""
    cleaned = _NAME_OUTSIDE.sub("-", filename)[:200]
    return cleaned if cleaned[:1].isalnum() else f"annexe{index}-{cleaned}"


async def dossier_of(deps: SignatureDeps, flow_id: str, settings: SignatureSettings,
                     submission: dict[str, Any]) -> Any:
    """The acte's ``CreerDossier`` request (documents read from the blob store)."""
    limit = deps.max_acte_bytes
    document = submission["document"]["blob"]
    annexes = [
        Annex(name=annex_name(a["blob"]["filename"], i),
              content=await read_blob(deps, a["blob"]["sha256"], limit=limit),
              content_type=a["blob"]["media_type"])
        for i, a in enumerate(submission.get("annexes") or [], start=1)
    ]
    return acte_dossier(
        flow_id, settings,
        document=await read_blob(deps, document["sha256"], limit=limit),
        document_name=document["filename"], annexes=annexes,
        nature=str(submission["nature_code"]),
        classification=".".join(str(m) for m in submission["matieres"]),
        decision_date=submission["decision_date"], subject=submission["objet"],
        today=date.today(),
    )


def first_check(flow: FlowContext, dossier_id: str, deadline: date | None,
                submission_value: bytes) -> dict[str, Any]:
    return {
        "flow_id": flow.flow_id, "flow_type": flow.flow_type,
        "member_siren": flow.member_siren, "submission_id": flow.submission_id or "",
        "dossier_id": dossier_id, "deadline": deadline, "polls": 0,
        "overdue_reported": False, "last_status": None, "submission": submission_value,
    }


def _reconcile(connector: Parapheur, dossier_id: str) -> Any:
    async def reconcile() -> str | None:
        found = (await connector.find_dossiers([dossier_id])).get(dossier_id)
        held = found is not None and found.state is not SignatureState.NOT_FOUND
        return dossier_id if held else None
    return reconcile


async def handle_request(record: InputRecord, deps: SignatureDeps) -> list[Outbound]:
    """Create the acte's dossier in i-Parapheur (exactly once) and schedule its first poll."""
    value = record.value or b""
    submission = deps.codec.decode(value, expected="ActeSubmission").record
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    siren = h.get(headers, h.MEMBER) or submission["member_siren"]
    flow = FlowContext(flow_id, siren, FLOW_TYPE, submission["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    member = deps.member(siren)
    settings = member_settings(member, FLOW_TYPE)
    if settings is None:  # the member stopped signing meanwhile: straight to the TdT
        log.info("signature.not_configured", flow_id=flow_id)
        return [Outbound(ACTS_DELIVERY.name, flow_id.encode("utf-8"), value,
                         h.replace(headers, **{h.ATTEMPT: None}))]
    connector = deps.connectors.for_member(member)
    dossier_id = dossier_id_for(flow_id)
    account = member.account(PARTNER)
    entry = deps.journal_view.get(flow_id, PARTNER) or JournalEntry(
        flow_id=flow_id, flow_type=FLOW_TYPE, member_siren=siren, partner=PARTNER,
        step="VALIDATED", idempotency_key=dossier_id,
        account=account.url if account else None,
        keys={"submission_id": submission["submission_id"], "dossier_id": dossier_id},
    )
    if entry.step in DONE:
        log.info("signature.create_skipped", flow_id=flow_id, step=entry.step)
        return []
    request = await dossier_of(deps, flow_id, settings, submission)

    async def call() -> str:
        await connector.create_dossier(request)  # ALREADY_EXISTS: created by an earlier try
        return dossier_id

    outcome = await deliver_exactly_once(
        entry, journal=Journal(view=deps.journal_view, publisher=deps.journal, stage=STAGE),
        call=call, reconcile=_reconcile(connector, dossier_id), parent=parent,
    )
    journal_out = entry_outbound(deps.codec, outcome.entry, stage=STAGE, parent=parent)
    match outcome:
        case Delivered():
            log.info("signature.dossier_created", flow_id=flow_id, dossier_id=dossier_id)
            return [
                journal_out,
                *transition(deps, flow, stage=STAGE, state="signing", previous="validated",
                            kind="STATE_CHANGED", parent=parent, partner_ref=dossier_id,
                            message=f"the acte waits for its signature in i-Parapheur "
                            f"(dossier {dossier_id})", details={"dossier_id": dossier_id}),
                schedule_poll(deps.codec, schema_name="SignatureCheck",
                              check=first_check(flow, dossier_id, request.deadline, value),
                              flow_id=flow_id, member_siren=siren,
                              status_topic=SIGNATURE_STATUS.name, wait=deps.poll_schedule[0],
                              stage=STAGE, parent=parent),
            ]
        case Uncertain(why=why):
            return [journal_out, *transition(
                deps, flow, stage=STAGE, state="uncertain", previous="validated",
                kind="FAILED", parent=parent, partner_ref=dossier_id,
                message="i-Parapheur cannot tell whether an earlier attempt created the "
                "dossier; an operator must check", reasons=[Reason("signature", "uncertain",
                                                                   why)])]
        case Refused(error=error):
            return [journal_out, *transition(
                deps, flow, stage=STAGE, state="rejected", previous="validated",
                kind="REJECTED", parent=parent, partner_ref=dossier_id,
                message=f"i-Parapheur refused the dossier: {error.message}",
                reasons=error.reasons or [Reason("signature", "iparapheur_refused",
                                                 error.message)])]
    return []
