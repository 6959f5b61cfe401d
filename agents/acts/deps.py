"""What the acts stages share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.acts.ports import Blobs, ConnectorRegistry, JournalPublisher, LinksView, SnapshotView
from relais.errors import UnknownMemberError
from relais.flows.outbound import FlowContext, Outbound, encode_outbound
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders


class Members(Protocol):
    def get(self, siren: str) -> Member | None: ...


@dataclass
class ActsDeps:
    codec: AvroCodec
    members: Members
    blobs: Blobs
    links: LinksView
    classifications: SnapshotView
    connectors: ConnectorRegistry
    journal: JournalPublisher
    max_acte_bytes: int = 150 * 1024 * 1024
    poll_schedule: tuple[str, ...] = ("5s", "30s", "2m", "10m", "1h")
    paused_partners: set[str] = field(default_factory=set)
    #: Attempts at fetching the stamped acte (one per poll tier) before telling the
    #: member that no stamped copy is available (doubled for transient TdT failures).
    stamp_attempts: int = 5

    def member(self, siren: str) -> Member:
        member = self.members.get(siren)
        if member is None:
            raise UnknownMemberError(f"member {siren} is not registered (or inactive)")
        return member

    def out(
        self,
        topic: str,
        flow: FlowContext,
        schema_name: str,
        record: dict[str, Any],
        *,
        stage: str,
        event_id: str,
        parent: EventHeaders | None,
        key: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Outbound:
        out = encode_outbound(
            self.codec, topic=topic, key=key or flow.flow_id, schema_name=schema_name,
            record=record, source=f"/relais/hub/{stage}", event_id=event_id,
            subject=flow.flow_id, flow_id=flow.flow_id, parent=parent,
        )
        if extra_headers:
            extra = [(k, v.encode("utf-8")) for k, v in extra_headers.items()]
            return Outbound(out.topic, out.key, out.value, [*out.headers, *extra])
        return out
