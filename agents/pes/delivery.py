"""pes-delivery: a checked PES_Aller imported into the member's TdT (S²LOW's Hélios API),
exactly once.

Input ``relais.pes.delivery``. The journal entry (VALIDATED, written by pes-validation)
gets ``after_id``, the highest Hélios transaction id the journal knows for the account,
before each intent (POSTING) is published (refreshed at every attempt); then
:func:`relais.journal.deliver.deliver_exactly_once` calls ``helios_importer_fichier.php``.
An entry found POSTING (the worker crashed or the import timed out) is reconciled first
with :meth:`HeliosConnector.find_pes`: the ids after the previous attempt's ``after_id``
are walked and the PES_Aller S²LOW holds compared by SHA-1. S²LOW itself refuses the
same bytes twice, so a second import can never create a second transaction.

Outcomes: ``posted`` (partner_ref: the Hélios transaction id) with the journal entry POSTED,
``rejected`` when S²LOW refused the file (its text as reason), ``uncertain`` when it cannot
tell whether the earlier import arrived, and ``uncertain`` too when S²LOW refuses the file
as a "doublon" (it holds these exact bytes) that ``find_pes`` did not find within
``find_window`` ids: the file is at the TdT, so it is not *rejected*; an operator finds its
transaction (``relais flows resolve`` does not settle PES flows yet: see
``docs/sandbox-helios.md``). A posted file gets its first status check
(:mod:`agents.pes.status`).
"""

from __future__ import annotations

import structlog

from agents.pes.deps import PesDeps
from agents.pes.journal import high_water
from agents.pes.machines import BY_TYPE
from agents.pes.status import first_status_check
from agents.pes.validation import FIELD, _read_blob
from connectors.tdt.helios import DUPLICATE_CODE
from relais.errors import ConfigurationError, Reason
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
from relais.members.model import TDT
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders

log = structlog.get_logger(__name__)
STAGE = "pes-delivery"


async def handle_delivery(record: InputRecord, deps: PesDeps) -> list[Outbound]:
    """Import one PES_Aller into the member's TdT, at most once."""
    if deps.connectors is None or deps.publisher is None:
        raise ConfigurationError("pes-delivery needs the Hélios connectors and the publisher")
    submission = deps.codec.decode(record.value or b"", expected="PesSubmission").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or submission["member_siren"]
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    flow = FlowContext(flow_id, siren, "pes", submission["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    machine = machine_for(BY_TYPE, "pes")
    member = deps.member(siren)
    tdt = member.account(TDT)
    entry = deps.journal.get(flow_id) or JournalEntry(
        flow_id=flow_id, flow_type="pes", member_siren=siren, partner=TDT, step="VALIDATED",
        idempotency_key=f"{flow_id}:import", account=tdt.url if tdt else None,
        keys={"sha256": submission["pes_aller"]["sha256"]},
    )
    content = await _read_blob(deps, submission["pes_aller"]["sha256"], deps.limits.max_bytes)
    if isinstance(content, list):
        return emit(deps.codec, flow, machine, stage=STAGE, state="rejected",
                    previous="validated", kind="REJECTED", parent=parent, reasons=content,
                    message="the PES_Aller can no longer be read")
    # The ids an earlier attempt may have created lie after the after_id its intent
    # recorded; a new attempt's intent records the high-water mark known now (every id in
    # the journal exists already, so whatever this attempt creates comes after it). A
    # retry long after the first attempt then walks from near its own call, not from the
    # first one: the find window is not eaten by the imports made meanwhile.
    previous = entry.keys.get("after_id")
    fresh = max(high_water(deps.journal.entries(), entry.account), int(previous or 0))
    after_id = int(previous) if previous is not None else fresh  # where reconcile walks
    entry = entry.moved(entry.step, keys={**entry.keys, "after_id": str(fresh)})
    connector = deps.connectors.for_member(member)
    filename = submission["pes_aller"]["filename"] or f"{entry.keys.get('nom_fic') or 'pes'}.xml"

    async def call() -> str:
        return (await connector.import_pes(content, filename)).transaction_id

    async def reconcile() -> str | None:
        return await connector.find_pes(content, after_id=after_id, window=deps.find_window)

    outcome = await deliver_exactly_once(
        entry, journal=Journal(deps.journal, deps.publisher, STAGE), call=call,
        reconcile=reconcile, parent=parent,
    )
    if isinstance(outcome, AlreadyDone):
        log.info("pes.delivery_skipped", step=outcome.entry.step)
        return []
    journal_out = entry_outbound(deps.codec, outcome.entry, stage=STAGE, parent=parent)
    if isinstance(outcome, Delivered):
        ref = outcome.entry.partner_ref
        log.info("pes.posted", transaction_id=ref, reconciled=outcome.reconciled)
        assert ref is not None
        return [journal_out, *emit(
            deps.codec, flow, machine, stage=STAGE, state="posted", previous="validated",
            kind="STATE_CHANGED", parent=parent, partner_ref=ref,
            message=f"PES_Aller imported into the TdT as Hélios transaction {ref}"),
            first_status_check(deps, flow, ref, parent, stage=STAGE)]
    if isinstance(outcome, Refused) and any(
            r.code == DUPLICATE_CODE for r in outcome.error.reasons):
        return _held_but_not_found(deps, flow, outcome.entry, parent, after_id,
                                   outcome.error.message)
    if isinstance(outcome, Refused):
        reasons = outcome.error.reasons or [Reason(FIELD, "tdt_refused", outcome.error.message)]
        return [journal_out, *emit(
            deps.codec, flow, machine, stage=STAGE, state="rejected", previous="validated",
            kind="REJECTED", parent=parent, reasons=reasons,
            message=f"the TdT refused the PES_Aller: {outcome.error.message}")]
    assert isinstance(outcome, Uncertain)
    return [journal_out, *emit(
        deps.codec, flow, machine, stage=STAGE, state="uncertain", previous="validated",
        kind="FAILED", parent=parent,
        message=f"the TdT cannot tell whether the PES_Aller arrived: {outcome.why}")]


def _held_but_not_found(deps: PesDeps, flow: FlowContext, refused: JournalEntry,
                        parent: EventHeaders, after_id: int, refusal: str) -> list[Outbound]:
    """S²LOW refused the import as a "doublon": it already holds these exact bytes, yet
    :meth:`~connectors.tdt.helios.HeliosConnector.find_pes` did not find them among the
    ids it walked (an import lost beyond ``find_window`` ids, or the same file posted
    outside Relais). The file is at the TdT, so *rejected* would be false: the flow is
    parked *uncertain* (journal UNCERTAIN) for an operator to find the transaction."""
    parked = refused.moved("UNCERTAIN")
    deps.journal.put_local(parked)
    walked = f"{after_id + 1}…{after_id + deps.find_window}"
    message = (f"the TdT already holds this exact PES_Aller ({refusal}) but its transaction "
               f"was not found among ids {walked}; an operator must find it on the TdT")
    log.warning("pes.delivery_uncertain", after_id=after_id, window=deps.find_window)
    return [entry_outbound(deps.codec, parked, stage=STAGE, parent=parent), *emit(
        deps.codec, flow, machine_for(BY_TYPE, "pes"), stage=STAGE, state="uncertain",
        previous="validated", kind="FAILED", parent=parent,
        reasons=[Reason(FIELD, DUPLICATE_CODE, message)], message=message)]
