"""Automatic archiving of acknowledged actes (members whose archive account says
``auto_archive=true``).

Two stages:

- ``archive-dossier`` reads ``relais.acts.delivery`` (the acte submissions on their way to
  the TdT) and keeps those of opted-in members in the compacted ``relais.archive.dossiers``
  by acte flow id: the acte's metadata, its document and annexes (blob references);
- ``archive-acts`` reads ``relais.flows.events``. When an acte's acknowledgement is complete
  (the *acknowledged* acte's stamped copy arrived, child event ``stamped-acte``, or the TdT
  has none, ``stamped-acte-unavailable``), it fetches the ARActe and the stamped PDF from
  the member's TdT (the TdT keeps them; S²LOW's status and stamp pages), stores them as
  blobs of the member, and starts an archive flow (``received``) with an
  ``ArchiveSubmission`` whose tree is: the acte (RecordGrp) → the acte document, the
  annexes (a RecordGrp), the prefecture exchange (a RecordGrp: ARActe, stamped copy).
  The archive flow's submission id is ``acte-<acte submission id>``: one transfer per acte,
  whatever the redeliveries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from functools import partial
from typing import Any, Protocol

import structlog

from agents.archive.deps import ArchiveDeps
from agents.archive.machines import BY_TYPE
from connectors.archive.settings import ARCHIVE
from relais.errors import RelaisError
from relais.flows.emit import emit
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext, Outbound
from relais.flows.progress import machine_for
from relais.members.model import TDT, Member
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.archive import ARCHIVE_DOSSIERS, ARCHIVE_SUBMITTED

log = structlog.get_logger(__name__)
DOSSIER_STAGE = "archive-dossier"
ACTS_STAGE = "archive-acts"
TRIGGERS = frozenset({"stamped-acte", "stamped-acte-unavailable"})
EXCHANGE = "Échanges avec la préfecture"
ANNEXES = "Annexes"


class Tdt(Protocol):
    async def get_status(self, transaction_id: str) -> Any: ...

    async def get_stamped_acte(self, transaction_id: str) -> bytes: ...

    async def save_stamped_acte(
        self, transaction_id: str, store: Callable[[AsyncIterator[bytes]], Awaitable[Any]]
    ) -> Any: ...


class TdtAccounts(Protocol):
    def for_member(self, member: Member) -> Tdt: ...


def auto_archive(member: Member | None) -> bool:
    """Whether the member's archive account asks for every acknowledged acte."""
    account = member.account(ARCHIVE) if member else None
    flag = (account.option("auto_archive", "false") or "") if account else ""
    return flag.lower() in ("true", "1", "yes")


async def handle_dossier(record: InputRecord, deps: ArchiveDeps) -> list[Outbound]:
    """Keep an opted-in member's acte submission by flow id (value byte for byte)."""
    headers = list(record.headers or ())
    flow_id = h.get(headers, FLOW_ID_HEADER) or (record.key or b"").decode("utf-8", "replace")
    siren = h.get(headers, h.MEMBER) or ""
    if not auto_archive(deps.members.get(siren)) or not flow_id:
        return []
    log.info("archive.dossier_kept", flow_id=flow_id)
    return [Outbound(ARCHIVE_DOSSIERS.name, flow_id.encode("utf-8"), record.value,
                     h.replace(headers, **{h.ATTEMPT: None}))]


def _blob(ref: Any) -> dict[str, Any]:
    data = ref.to_dict() if hasattr(ref, "to_dict") else dict(ref)
    return {k: data[k] for k in ("sha256", "size", "media_type", "filename")}


def _document(blob: dict[str, Any], title: str, kind: str, group: str | None) -> dict[str, Any]:
    return {"blob": _blob(blob), "title": title, "document_type": kind, "group": group}


def acte_submission(dossier: dict[str, Any], id_acte: str, *, aracte: Any | None,
                    stamped: Any | None,
                    prefecture_messages: tuple[tuple[Any, str], ...] = ()) -> dict[str, Any]:
    """The ``ArchiveSubmission`` of an acknowledged acte and its exchange
    (``prefecture_messages``: (blob, title) of each message of the prefecture's)."""
    decided = dossier["decision_date"]
    if isinstance(decided, int):
        decided = date(1970, 1, 1) + timedelta(days=decided)
    documents = [_document(dossier["document"]["blob"], f"Acte {id_acte}", "Acte", None)]
    for index, annexe in enumerate(dossier.get("annexes") or [], start=1):
        documents.append(_document(annexe["blob"], f"Annexe {index}", "Annexe", ANNEXES))
    if aracte is not None:
        documents.append(_document(aracte, f"Accusé de réception de l'acte {id_acte}",
                                   "ARActe", EXCHANGE))
    if stamped is not None:
        documents.append(_document(stamped, f"Acte {id_acte} tamponné par la préfecture",
                                   "Acte tamponné", EXCHANGE))
    for blob, title in prefecture_messages:
        documents.append(_document(blob, title, "Courrier de la préfecture", EXCHANGE))
    return {
        "submission_id": f"acte-{dossier['submission_id']}",
        "member_siren": dossier["member_siren"],
        "title": f"Acte {id_acte} : {dossier['objet']}",
        "description_level": "RecordGrp",
        "description": str(dossier["objet"]),
        "start_date": decided.isoformat() if isinstance(decided, date) else None,
        "end_date": decided.isoformat() if isinstance(decided, date) else None,
        "keywords": [f"nature {dossier['nature_code']}", id_acte],
        "originating_service": None, "archival_agreement": None, "archival_profile": None,
        "access_rule": None, "appraisal_rule": None, "appraisal_final_action": None,
        "documents": documents,
    }


async def _exchange(deps: ArchiveDeps, tdt: Tdt, member: Member, id_acte: str,
                    transaction_id: str, stamped_wanted: bool) -> tuple[Any, Any]:
    aracte = stamped = None
    status = await tdt.get_status(transaction_id)
    document = getattr(status, "document", None)
    if document:
        aracte = await deps.blobs.put_bytes(document, media_type="application/xml",
                                            filename=f"{id_acte}-1-2.xml", owner=member.siren)
    if stamped_wanted:
        # streamed from the TdT into the blob store, never whole in memory
        stamped = await tdt.save_stamped_acte(transaction_id, partial(
            deps.blobs.put_stream, media_type="application/pdf",
            filename=f"{id_acte}-tampon.pdf", owner=member.siren))
    return aracte, stamped


async def handle_flow_event(record: InputRecord, deps: ArchiveDeps) -> list[Outbound]:
    """Start the archive flow of an acte whose acknowledgement is complete."""
    event = deps.codec.decode(record.value or b"", expected="FlowState").record
    details = event.get("details") or {}
    if event.get("flow_type") != "acte" or event.get("state") != "acknowledged" \
            or details.get("child_event") not in TRIGGERS:
        return []
    siren = str(event["member_siren"])
    member = deps.members.get(siren)
    if not auto_archive(member):
        return []
    assert member is not None
    acte_flow = str(event["flow_id"])
    dossier = deps.dossiers.get(acte_flow) if deps.dossiers is not None else None
    if dossier is None:
        log.warning("archive.dossier_missing", acte_flow_id=acte_flow)
        return []
    id_acte = str(event.get("partner_ref") or dossier["numero_interne"])
    transaction_id = details.get("transaction_id", "")
    tdt = deps.extra["tdt"].for_member(member) if member.account(TDT) else None
    try:
        aracte, stamped = (await _exchange(deps, tdt, member, id_acte, transaction_id,
                                           details["child_event"] == "stamped-acte")
                           if tdt is not None and transaction_id else (None, None))
    except RelaisError as exc:
        if exc.retriable:
            raise
        log.warning("archive.exchange_unavailable", acte_flow_id=acte_flow, error=exc.message)
        aracte = stamped = None
    submission = acte_submission(dossier, id_acte, aracte=aracte, stamped=stamped)
    flow = FlowContext(flow_id_for(siren, submission["submission_id"]), siren, "archive",
                       submission["submission_id"])
    parent = EventHeaders.from_kafka(list(record.headers or ()))
    log.info("archive.acte_queued", acte_flow_id=acte_flow, flow_id=flow.flow_id,
             documents=len(submission["documents"]))
    headers = h.replace(
        EventHeaders.new(source=f"/relais/hub/{ACTS_STAGE}",
                         type=deps.codec.catalog.current("ArchiveSubmission").full_name,
                         subject=flow.flow_id, flow_id=flow.flow_id, parent=parent).to_kafka(),
        **{FLOW_ID_HEADER: flow.flow_id, h.MEMBER: siren})
    return [
        *emit(deps.codec, flow, machine_for(BY_TYPE, "archive"), stage=ACTS_STAGE,
              state="received", previous=None, kind="ACCEPTED", parent=parent,
              partner_ref=id_acte, details={"acte_flow_id": acte_flow},
              message=f"acte {id_acte} acknowledged: its archiving starts "
                      f"({len(submission['documents'])} documents)"),
        Outbound(ARCHIVE_SUBMITTED.name, siren.encode("utf-8"),
                 deps.codec.encode("ArchiveSubmission", submission), headers),
    ]
