"""The acts' view of the delivery journal (``relais/journal``).

An acte's journal entry (flow type ``acte``, partner ``tdt``) keeps the acte's identity
in its keys (``submission_id``, ``id_acte``, ``numero_interne``, ``decision_date``,
``nature_code``); the account is the member's TdT URL and the partner reference the TdT
transaction id. :class:`ActeLink` reads and writes such an entry with typed fields;
:class:`LinkIndex` is the journal view with the acts' lookups (by IDActe, by TdT
transaction). The acts write to the shared topic ``relais.journal.deliveries``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from relais.flows.outbound import Outbound
from relais.journal.deliver import entry_outbound
from relais.journal.entry import JournalEntry, step_of
from relais.journal.view import JournalView
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders

FLOW_TYPE = "acte"
PARTNER = "tdt"
#: The partner of a signed acte's signature entry (``agents/signature``).
SIGNATURE_PARTNER = "iparapheur"
#: The keys acte flows are found by (an IDActe is unique per member).
INDEXED = {FLOW_TYPE: ("id_acte",)}


@dataclass(frozen=True)
class ActeLink:
    """An acte's journal entry with typed fields (``delivery`` is the journal step)."""

    flow_id: str
    member_siren: str
    submission_id: str
    id_acte: str
    numero_interne: str
    decision_date: date
    nature_code: int
    delivery: str  # the journal step: VALIDATED | POSTING | POSTED | UNCERTAIN | REFUSED
    idempotency_key: str
    tdt_url: str | None = None
    transaction_id: str | None = None
    updated_at: datetime | None = None

    def moved(self, delivery: str, **changes: Any) -> ActeLink:
        return replace(self, delivery=delivery, **changes)

    def to_entry(self) -> JournalEntry:
        return JournalEntry(
            flow_id=self.flow_id, flow_type=FLOW_TYPE, member_siren=self.member_siren,
            partner=PARTNER, step=step_of(self.delivery), idempotency_key=self.idempotency_key,
            account=self.tdt_url, partner_ref=self.transaction_id,
            keys={"submission_id": self.submission_id, "id_acte": self.id_acte,
                  "numero_interne": self.numero_interne,
                  "decision_date": self.decision_date.isoformat(),
                  "nature_code": str(self.nature_code)},
            updated_at=self.updated_at,
        )

    @classmethod
    def of(cls, entry: JournalEntry) -> ActeLink:
        keys = entry.keys
        return cls(
            flow_id=entry.flow_id, member_siren=entry.member_siren,
            submission_id=keys["submission_id"], id_acte=keys["id_acte"],
            numero_interne=keys["numero_interne"],
            decision_date=date.fromisoformat(keys["decision_date"]),
            nature_code=int(keys["nature_code"]), delivery=entry.step,
            idempotency_key=entry.idempotency_key, tdt_url=entry.account,
            transaction_id=entry.partner_ref, updated_at=entry.updated_at,
        )

    def to_record(self) -> dict[str, Any]:
        """The Avro ``JournalEntry`` record of this link."""
        return self.to_entry().to_record()


def link_outbound(codec: AvroCodec, link: ActeLink, parent: EventHeaders | None, *,
                  stage: str, event_parts: tuple[str, ...] = ()) -> Outbound:
    """The acte's journal entry as a record of a stage's transaction."""
    return entry_outbound(codec, link.to_entry(), stage=stage, parent=parent,
                          event_parts=event_parts)


class LinkIndex:
    """The delivery journal as the acts read it: acte links by flow id, IDActe and
    TdT transaction."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        self.journal = JournalView(bootstrap_servers, codec, INDEXED)
        self.view = self.journal.view

    def get(self, flow_id: str) -> ActeLink | None:
        entry = self.journal.get(flow_id, PARTNER)
        return ActeLink.of(entry) if entry is not None and entry.flow_type == FLOW_TYPE else None

    def put_local(self, link: ActeLink) -> None:
        self.journal.put_local(link.to_entry())

    def signature_of(self, flow_id: str) -> JournalEntry | None:
        """The flow's i-Parapheur journal entry (``agents/signature``), or None."""
        return self.journal.get(flow_id, SIGNATURE_PARTNER)

    def flow_of_id_acte(self, siren: str, id_acte: str) -> str | None:
        return self.journal.flow_of(siren, "id_acte", id_acte)

    def flow_of_transaction(self, tdt_url: str, transaction_id: str) -> str | None:
        return self.journal.flow_of_partner_ref(tdt_url, transaction_id)

    async def start(self) -> None:
        await self.journal.start()

    async def stop(self) -> None:
        await self.journal.stop()
