"""pes-validation: the checks before a PES_Aller goes to the member's TdT.

Input ``relais.pes.submitted`` (keyed by SIREN). The PES_Aller blob is read (bounded by
:class:`relais.pes.xml_safe.PesLimits`: size checked with the blob store first), parsed off
the event loop (:func:`relais.pes.aller.read_aller_async`: no DTD, no entities) and checked
(:func:`relais.pes.checks.check_aller`: IdColl a Luhn-valid SIRET of the member's SIREN,
CodCol/CodBud/IdPost, TypFic/NomFic, signature present when the member's TdT account has
``pes_signature_required=true`` and its XML-DSig structure and digests intact). Output: the
submission forwarded to ``relais.pes.delivery`` with a ``validated`` event, or a
``rejected`` one whose reasons name each element (``pes_aller.EnTetePES/IdColl``…).

A file already accepted for the member (same content digest, i.e. the blob's SHA-256, or
same ``NomFic``, found in the delivery journal's index) is refused; an accepted one is
recorded in the journal (step VALIDATED, keys ``sha256`` and ``nom_fic``) in the stage's
transaction. A submission replayed after it was recorded is skipped.
"""

from __future__ import annotations

import structlog

from agents.pes.deps import SIGNATURE_OPTION, PesDeps
from agents.pes.machines import BY_TYPE
from relais.errors import Reason, ValidationError
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.journal.deliver import entry_outbound
from relais.journal.entry import JournalEntry
from relais.members.model import TDT
from relais.pes.aller import PesAller, read_aller_async
from relais.pes.checks import PesPolicy, check_aller, duplicate_reasons
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.pes import PES_DELIVERY

log = structlog.get_logger(__name__)
STAGE = "pes-validation"
FIELD = "pes_aller"


async def _read_blob(deps: PesDeps, sha256: str, limit: int) -> bytes | list[Reason]:
    size = await deps.blobs.stat(sha256)
    if size is None:
        return [Reason(f"{FIELD}.sha256", "blob_not_found", f"no blob with digest {sha256}")]
    if size > limit:
        return [Reason(FIELD, "too_large",
                       f"the PES_Aller weighs {size} bytes, more than the {limit} read")]
    chunks = bytearray()
    stream = deps.blobs.open(sha256)
    try:
        async for chunk in stream:
            chunks += chunk
            if len(chunks) > limit:
                return [Reason(FIELD, "too_large", f"the PES_Aller is over {limit} bytes")]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return bytes(chunks)


def _duplicates(deps: PesDeps, siren: str, flow_id: str, digest: str,
                pes: PesAller) -> list[Reason]:
    def taken(name: str, value: str | None) -> list[str]:
        owner = deps.journal.flow_of(siren, name, value) if value else None
        return [value] if value and owner is not None and owner != flow_id else []

    found = duplicate_reasons(pes, digest, taken("nom_fic", pes.nom_fic),
                              taken("sha256", digest))
    return [Reason(f"{FIELD}.{r.field}" if r.field != "PES_Aller" else FIELD, r.code, r.message)
            for r in found]


async def check_submission(
    deps: PesDeps, siren: str, submission: dict[str, object], flow_id: str = ""
) -> tuple[PesAller | None, list[Reason]]:
    """The PES_Aller as read and every reason it cannot go to the TdT (empty: it can)."""
    member = deps.member(siren)
    reasons: list[Reason] = []
    if member.tdt is None:
        reasons.append(Reason("member_siren", "no_tdt",
                              f"member {siren} has no tiers de télétransmission configured"))
    blob = submission["pes_aller"]
    assert isinstance(blob, dict)
    raw = await _read_blob(deps, str(blob["sha256"]), deps.limits.max_bytes)
    if isinstance(raw, list):
        return None, reasons + raw
    try:
        pes = await read_aller_async(raw, deps.limits)
    except ValidationError as exc:
        return None, reasons + [Reason(f"{FIELD}.{r.field}", r.code, r.message)
                                for r in exc.reasons]
    required = (member.tdt.option(SIGNATURE_OPTION, "false") if member.tdt else "false") or ""
    policy = PesPolicy(signature_required=required.lower() in ("1", "true", "yes"))
    reasons += [Reason(f"{FIELD}.{r.field}", r.code, r.message)
                for r in check_aller(pes, siren, policy)]
    reasons += _duplicates(deps, siren, flow_id, str(blob["sha256"]), pes)
    return pes, reasons


async def handle_submitted(record: InputRecord, deps: PesDeps) -> list[Outbound]:
    """Check one PES_Aller; forward it for delivery or reject it with reasons."""
    submission = deps.codec.decode(record.value or b"", expected="PesSubmission").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or submission["member_siren"]
    flow_id = h.get(headers, FLOW_ID_HEADER) or ""
    flow = FlowContext(flow_id, siren, "pes", submission["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    machine = machine_for(BY_TYPE, "pes")
    if deps.journal.get(flow_id) is not None:
        log.info("pes.duplicate_submission", flow_id=flow_id)
        return []
    pes, reasons = await check_submission(deps, siren, submission, flow_id)
    nom_fic = pes.nom_fic if pes is not None else None
    if reasons:
        log.info("pes.rejected", fields=[r.field for r in reasons])
        return emit(deps.codec, flow, machine, stage=STAGE, state="rejected",
                    previous="received", kind="REJECTED",
                    message="the PES_Aller was refused before reaching the TdT",
                    parent=parent, reasons=reasons, partner_ref=nom_fic)
    assert pes is not None
    tdt = deps.member(siren).account(TDT)
    entry = JournalEntry(
        flow_id=flow_id, flow_type="pes", member_siren=siren, partner=TDT, step="VALIDATED",
        idempotency_key=f"{flow_id}:import", account=tdt.url if tdt else None,
        keys={"sha256": str(submission["pes_aller"]["sha256"]), "nom_fic": nom_fic or ""},
    )
    deps.journal.put_local(entry)
    log.info("pes.validated", nom_fic=nom_fic, bordereaux=len(pes.bordereaux))
    return [
        entry_outbound(deps.codec, entry, stage=STAGE, parent=parent),
        *emit(deps.codec, flow, machine, stage=STAGE, state="validated", previous="received",
              kind="STATE_CHANGED",
              message=f"PES_Aller {nom_fic} passed the checks ({len(pes.bordereaux)} "
                      f"bordereaux, {pes.piece_count} pièces, {pes.pj_count} PJ)",
              parent=parent, partner_ref=nom_fic),
        Outbound(PES_DELIVERY.name, flow_id.encode("utf-8"), record.value,
                 h.replace(headers, **{h.ATTEMPT: None})),
    ]
