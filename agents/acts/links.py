"""ActeLink: what ties an acte's flow to its IDActe and TdT transaction, and the
delivery journal (an intent is recorded before the TdT call, the outcome after)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from relais.kafka.compacted_view import CompactedView
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import ACTS_LINKS


@dataclass(frozen=True)
class ActeLink:
    flow_id: str
    member_siren: str
    submission_id: str
    id_acte: str
    numero_interne: str
    decision_date: date
    nature_code: int
    delivery: str  # VALIDATED | POSTING | POSTED | UNCERTAIN | REFUSED
    idempotency_key: str
    tdt_url: str | None = None
    transaction_id: str | None = None
    updated_at: datetime | None = None

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["updated_at"] = datetime.now(UTC)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ActeLink:
        return cls(**record)

    def moved(self, delivery: str, **changes: Any) -> ActeLink:
        return replace(self, delivery=delivery, **changes)


class LinkIndex:
    """The links view with lookups by IDActe and by TdT transaction."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        self._by_id_acte: dict[tuple[str, str], str] = {}
        self._by_transaction: dict[tuple[str, str], str] = {}
        self.view: CompactedView[ActeLink] = CompactedView(
            bootstrap_servers, codec, topic=ACTS_LINKS.name, schema_name="ActeLink",
            parse=ActeLink.from_record, on_change=self._index,
        )

    def _index(self, flow_id: str, link: ActeLink | None) -> None:
        if link is None:
            return
        key = (link.member_siren, link.id_acte)
        if link.delivery == "REFUSED":
            # the TdT created nothing: another submission may use this IDActe
            if self._by_id_acte.get(key) == flow_id:
                del self._by_id_acte[key]
            return
        self._by_id_acte[key] = flow_id
        if link.transaction_id and link.tdt_url:
            self._by_transaction[(link.tdt_url, link.transaction_id)] = flow_id

    def get(self, flow_id: str) -> ActeLink | None:
        return self.view.get(flow_id)

    def flow_of_id_acte(self, siren: str, id_acte: str) -> str | None:
        return self._by_id_acte.get((siren, id_acte))

    def flow_of_transaction(self, tdt_url: str, transaction_id: str) -> str | None:
        return self._by_transaction.get((tdt_url, transaction_id))

    def put_local(self, link: ActeLink) -> None:
        self.view.put_local(link.flow_id, link)

    def pending(self) -> list[ActeLink]:
        return [link for link in self.view.values() if link.delivery != "POSTED"]

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()
