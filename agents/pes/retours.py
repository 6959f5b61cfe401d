"""pes-retours: the comptable's PES_Retour files, fetched from each member's TdT and
delivered to the member.

Runs on the leader worker, every ``prefecture_poll_seconds``. For each member with a TdT
account, S²LOW's ``api/helios_get_list.php`` lists the unread PES_Retour; each is fetched
(``api/helios_get_retour.php``), kept byte for byte as a blob owned by the member, delivered
as a ``PARTNER_MESSAGE`` notification of its own flow (type ``pes-retour``, id derived from
the file's content, so the same file listed twice under two ids is one flow and one
event), then marked read (``api/helios_change_status.php``) only once the notification was
acknowledged by the broker. A file whose fetch or delivery fails stays unread and is tried
again at the next round (no dead letter yet).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import structlog

from agents.pes.deps import PesDeps
from agents.pes.machines import RETOUR
from relais.errors import RelaisError
from relais.flows.emit import emit
from relais.flows.ids import flow_id_for
from relais.flows.outbound import FlowContext
from relais.members.model import TDT, Member
from relais.wire.headers import EventHeaders

log = structlog.get_logger(__name__)
STAGE = "pes-retours"


class RawPublisher(Protocol):
    """Publishes encoded records outside a stage transaction, acknowledged."""

    async def publish_raw(
        self, topic: str, *, key: str | bytes | None, value: bytes | None,
        headers: EventHeaders | list[tuple[str, bytes]],
    ) -> None: ...


class MemberList(Protocol):
    def all(self) -> list[Member]: ...


class PesRetourWatcher:
    """One round at a time over every member's TdT account (see the module docstring)."""

    def __init__(self, deps: PesDeps, members: MemberList, publisher: RawPublisher) -> None:
        self._deps = deps
        self._members = members
        self._publisher = publisher
        self._delivered: set[str] = set()

    async def run_once(self) -> int:
        """Deliver what is unread now; the number of PES_Retour delivered."""
        delivered = 0
        for member in self._members.all():
            if member.active and member.account(TDT) is not None:
                delivered += await self._account(member)
        return delivered

    async def _account(self, member: Member) -> int:
        deps = self._deps
        assert deps.connectors is not None
        try:
            connector = deps.connectors.for_member(member)
            rows = await connector.list_pes_retour()
        except RelaisError as exc:
            log.warning("pes.retour_list_failed", member=member.siren, error=exc.message)
            return 0
        delivered = 0
        for row in rows:
            try:
                content = await connector.get_pes_retour(row.retour_id)
                digest = hashlib.sha256(content).hexdigest()
                if digest not in self._delivered:
                    await self._deliver(member, row.retour_id, row.name, row.date, content,
                                        digest)
                    self._delivered.add(digest)
                    delivered += 1
                await connector.mark_pes_retour_read(row.retour_id)
            except RelaisError as exc:
                log.warning("pes.retour_failed", member=member.siren, retour_id=row.retour_id,
                            error=exc.message)
        return delivered

    async def _deliver(self, member: Member, retour_id: str, name: str, date: str,
                       content: bytes, digest: str) -> None:
        deps = self._deps
        ref = await deps.blobs.put_bytes(
            content, media_type="application/xml", filename=name or f"PES_Retour-{retour_id}.xml",
            owner=member.siren)
        flow = FlowContext(flow_id_for(member.siren, f"pes-retour-{digest[:32]}"),
                           member.siren, "pes-retour", f"pes-retour-{retour_id}")
        for out in emit(
            deps.codec, flow, RETOUR, stage=STAGE, state="delivered", previous=None,
            kind="PARTNER_MESSAGE", parent=None, partner_ref=retour_id,
            documents=[ref.to_dict()], details={"retour_id": retour_id, "name": name,
                                                 "date": date},
            message=f"the comptable (Hélios) sent PES_Retour {name}",
        ):
            await self._publisher.publish_raw(out.topic, key=out.key, value=out.value,
                                              headers=out.headers)
        log.info("pes.retour_delivered", member=member.siren, retour_id=retour_id)
