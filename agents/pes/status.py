"""pes-status: polls the TdT for an imported PES_Aller until the comptable has answered.

Polls wait in the delay tiers (``poll_schedule``). S²LOW's Hélios states
(``HeliosStatus``): 3 makes the flow *transmitted*; 4, 6 or 8 mean a PES_ACQUIT was
received (S²LOW sets 8 for every one, rejected elements or not), which is downloaded, kept
byte for byte as a blob owned by the member, and read leniently
(:func:`relais.pes.acquit.read_acquit_async`). The file's outcome makes the flow
*acknowledged* (every element accepted), *partially-accepted* or *rejected*; the
notification carries one reason per error (field ``ElementACQUIT[i]`` with its
``DetailPiece``/``DetailLigne``, code ``NumAnoAck``, message ``LibelleAnoAck`` with its
DGFiP rule code) and, in ``details["elements"]``, each element's outcome. State -1 (S²LOW's
own checks refused the file) and 0 (cancelled at the TdT) make it *rejected* with S²LOW's
message. An older status than one already seen is ignored.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from agents.pes.deps import PesDeps
from agents.pes.machines import BY_TYPE
from connectors.tdt.helios import ACQUIT_STATES, HeliosStatus
from relais.errors import PartnerRefusedError, Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.journal.polls import next_poll, schedule_poll
from relais.pes.acquit import AcquitOutcome, ElementResult, PesAcquit, read_acquit_async
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.pes import PES_STATUS

log = structlog.get_logger(__name__)
STAGE = "pes-status"
SCHEMA = "PesStatusCheck"
_PROGRESS = {HeliosStatus.POSTED: 1, HeliosStatus.WAITING: 2, HeliosStatus.TRANSMITTED: 3}
_STATE = {AcquitOutcome.ACKNOWLEDGED: "acknowledged",
          AcquitOutcome.PARTIALLY_ACCEPTED: "partially-accepted",
          AcquitOutcome.REJECTED: "rejected"}


def first_status_check(deps: PesDeps, flow: FlowContext, transaction_id: str,
                       parent: EventHeaders | None, *, stage: str) -> Outbound:
    """The first poll of an imported file, on the schedule's first tier."""
    check = {"flow_id": flow.flow_id, "member_siren": flow.member_siren,
             "submission_id": flow.submission_id, "transaction_id": transaction_id,
             "polls": 0, "last_status": int(HeliosStatus.POSTED)}
    return schedule_poll(deps.codec, schema_name=SCHEMA, check=check, flow_id=flow.flow_id,
                         member_siren=flow.member_siren, status_topic=PES_STATUS.name,
                         wait=deps.poll_schedule[0], stage=stage, parent=parent)


def _next(deps: PesDeps, check: dict[str, Any], last: int,
          headers: list[tuple[str, bytes]]) -> Outbound:
    polls = check["polls"] + 1
    wait = deps.poll_schedule[min(polls, len(deps.poll_schedule) - 1)]
    return next_poll(deps.codec, schema_name=SCHEMA,
                     check={**check, "polls": polls, "last_status": last},
                     flow_id=check["flow_id"], status_topic=PES_STATUS.name, wait=wait,
                     headers=headers)


def _where(index: int, element: ElementResult) -> str:
    what = (f"IdUnique={element.id_unique}" if element.id_unique
            else f"NumBord={element.bordereau}/ExerciceBord={element.exercice}")
    return f"ElementACQUIT[{index}]({what})"


def acquit_reasons(acquit: PesAcquit) -> list[Reason]:
    """One reason per error of every element, each naming where it is."""
    reasons: list[Reason] = []
    for index, element in enumerate(acquit.elements, start=1):
        where = _where(index, element)
        for error in element.errors:
            reasons.append(Reason(where, error.code or "rejected", error.label or ""))
        for piece in element.pieces:
            for error in piece.errors:
                reasons.append(Reason(f"{where}/DetailPiece[{piece.piece}]",
                                      error.code or "rejected", error.label or ""))
            for line in piece.lines:
                for error in line.errors:
                    reasons.append(Reason(
                        f"{where}/DetailPiece[{piece.piece}]/DetailLigne[{line.line}]",
                        error.code or "rejected", error.label or ""))
        if not element.accepted and not element.all_errors():
            reasons.append(Reason(where, "rejected", "element rejected without an error"))
    return reasons


def _elements(acquit: PesAcquit) -> str:
    return json.dumps([
        {"domain": e.domain, "accepted": e.accepted, "bordereau": e.bordereau,
         "exercice": e.exercice, "id_unique": e.id_unique,
         "rule_codes": sorted({x.rule_code for x in e.all_errors() if x.rule_code})}
        for e in acquit.elements
    ], ensure_ascii=False)


async def _acknowledged(deps: PesDeps, flow: FlowContext, transaction_id: str, raw: bytes,
                        parent: EventHeaders) -> list[Outbound]:
    ref = await deps.blobs.put_bytes(raw, media_type="application/xml",
                                     filename=f"PES_ACQUIT-{transaction_id}.xml",
                                     owner=flow.member_siren)
    acquit = await read_acquit_async(raw, deps.limits)
    state = _STATE[acquit.outcome]
    accepted = sum(1 for e in acquit.elements if e.accepted)
    log.info("pes.acquit_received", outcome=acquit.outcome.value, elements=len(acquit.elements),
             accepted=accepted)
    return emit(
        deps.codec, flow, machine_for(BY_TYPE, "pes"), stage=STAGE, state=state,
        previous="transmitted", kind="REJECTED" if state == "rejected" else "STATE_CHANGED",
        parent=parent, partner_ref=transaction_id, documents=[ref.to_dict()],
        reasons=acquit_reasons(acquit),
        details={"outcome": acquit.outcome.value, "transaction_id": transaction_id,
                 "nom_fic": acquit.nom_fic or "", "elements": _elements(acquit)},
        message=(f"Hélios answered PES_Aller {acquit.nom_fic}: {accepted} of "
                 f"{len(acquit.elements)} elements accepted ({acquit.outcome.value})"),
    )


async def handle_status(record: InputRecord, deps: PesDeps) -> list[Outbound]:
    """One poll: a move of the flow, the comptable's answer, or the next poll."""
    check = deps.codec.decode(record.value or b"", expected=SCHEMA).record
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or check["flow_id"]
    flow = FlowContext(flow_id, check["member_siren"], "pes", check["submission_id"])
    parent = EventHeaders.from_kafka(headers)
    assert deps.connectors is not None
    connector = deps.connectors.for_member(deps.member(check["member_siren"]))
    transaction_id = check["transaction_id"]
    result = await connector.get_pes_status(transaction_id)
    last = int(check["last_status"])
    machine = machine_for(BY_TYPE, "pes")
    if result.status in (HeliosStatus.ERROR, HeliosStatus.CANCELLED):
        message = result.message or "the TdT reported an error"
        return emit(deps.codec, flow, machine, stage=STAGE, state="rejected",
                    previous="posted", kind="REJECTED", parent=parent,
                    partner_ref=transaction_id,
                    reasons=[Reason("pes_aller", f"tdt_status_{result.status}", message)],
                    message=f"the TdT refused the PES_Aller: {message}")
    if result.status in ACQUIT_STATES:
        try:
            raw = await connector.get_acquit(transaction_id)
        except PartnerRefusedError:
            log.info("pes.acquit_not_yet", transaction_id=transaction_id)
            return [_next(deps, check, last, headers)]
        return await _acknowledged(deps, flow, transaction_id, raw, parent)
    outputs: list[Outbound] = []
    progress = _progress(result.status)
    if progress >= 3 > _progress(last):
        outputs += emit(deps.codec, flow, machine, stage=STAGE, state="transmitted",
                        previous="posted", kind="STATE_CHANGED", parent=parent,
                        partner_ref=transaction_id,
                        message=f"Hélios transaction {transaction_id} was transmitted")
    furthest = result.status if progress >= _progress(last) else last
    return [*outputs, _next(deps, check, furthest, headers)]


_KNOWN = frozenset(int(s) for s in HeliosStatus)


def _progress(status: int) -> int:
    """How far along the transmission a state is (0: not a transmission step)."""
    return _PROGRESS.get(HeliosStatus(status), 0) if status in _KNOWN else 0
