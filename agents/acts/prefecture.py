"""acts-prefecture: fetches the prefecture's messages (2-1 courrier simple, 3-1 demande de
pièces complémentaires, 4-1 lettre d'observations, 5-1 déféré au tribunal administratif)
from each member's TdT and delivers them to the member, linked to their acte.

Runs on the faust leader only, every few seconds. A message is tied to its acte
by the TdT transaction it names, so it is delivered even when listed before the
acte's acknowledgement; one whose transaction is not known yet waits for the
next round. The same message listed twice (under two ids) carries the same
event id, derived from its content, and is delivered once per process.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

import structlog

from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from connectors.tdt.models import PrefectureDocumentRef
from relais.actes.archive import read_transmission
from relais.actes.codes import MESSAGE_TYPE_BY_CODE
from relais.actes.xml_parse import ActesMessage, parse_message
from relais.blobs.sniff import sniff_media_type
from relais.errors import RelaisError
from relais.flows.outbound import FlowContext
from relais.members.model import Member

log = structlog.get_logger(__name__)
STAGE = "acts-prefecture"


class MemberList(Protocol):
    def all(self) -> list[Member]: ...


def _meaning(type_code: str) -> str:
    entry = MESSAGE_TYPE_BY_CODE.get(type_code)
    return entry.meaning if entry is not None else "message"


def _business_message(files: dict[str, bytes], type_code: str) -> ActesMessage | None:
    for name, content in files.items():
        if not name.lower().endswith(".xml"):
            continue
        try:
            message = parse_message(content)
        except RelaisError:
            continue
        if message.type_code == type_code or not message.type_code.startswith("enveloppe"):
            return message
    return None


class PrefectureWatcher:
    def __init__(self, deps: ActsDeps, members: MemberList) -> None:
        self._deps = deps
        self._members = members
        self._delivered: set[tuple[str, str]] = set()
        self.delivered = 0

    def _accounts(self) -> Iterable[Member]:
        seen: set[tuple[str, str]] = set()
        for member in self._members.all():
            if member.tdt is None or not member.active:
                continue
            key = (member.tdt.url, member.tdt.login)
            if key not in seen:
                seen.add(key)
                yield member

    async def run_once(self, concurrency: int = 8) -> int:
        """One round over every TdT account, several accounts at a time, so one slow or
        failing TdT does not hold the others; returns the messages delivered."""
        gate = asyncio.Semaphore(concurrency)

        async def one(member: Member) -> int:
            async with gate:
                try:
                    return await self._account(member)
                except RelaisError as exc:
                    log.warning("acts.prefecture_round_failed", member=member.siren,
                                error=str(exc), retriable=exc.retriable)
                    return 0

        return sum(await asyncio.gather(*(one(member) for member in self._accounts())))

    async def _account(self, member: Member) -> int:
        assert member.tdt is not None
        connector = self._deps.connectors.for_member(member)
        delivered = 0
        for ref in await connector.list_prefecture_documents():
            if ref.related_transaction_id is None:
                continue
            flow_id = self._deps.links.flow_of_transaction(member.tdt.url,
                                                           ref.related_transaction_id)
            if flow_id is None:
                log.info("acts.prefecture_message_waits", document=ref.id,
                         transaction_id=ref.related_transaction_id)
                continue
            try:
                archive = await connector.get_prefecture_document(ref.id)
                if await self._deliver(flow_id, ref, archive):
                    delivered += 1
                await connector.mark_prefecture_document_read(ref.id)
            except RelaisError as exc:
                # this message waits for the next round; the others go on now
                log.warning("acts.prefecture_message_failed", document=ref.id,
                            error=str(exc), retriable=exc.retriable)
        return delivered

    async def _deliver(self, flow_id: str, ref: PrefectureDocumentRef, archive: bytes) -> bool:
        deps = self._deps
        link = deps.links.get(flow_id)
        if link is None:
            return False
        try:
            files = read_transmission(archive)
        except RelaisError:
            files = {f"{ref.id}.xml": archive}
        message = _business_message(files, ref.type_code)
        content_key = hashlib.sha256(
            message.raw if message is not None else archive
        ).hexdigest()[:16]
        event_key = f"{ref.type_code}:{content_key}"
        if (flow_id, event_key) in self._delivered:
            log.info("acts.prefecture_duplicate", document=ref.id, type_code=ref.type_code)
            return False
        documents: list[dict[str, Any]] = []
        for name, content in sorted(files.items()):
            media = sniff_media_type(content[:16]) or "application/octet-stream"
            ref_blob = await deps.blobs.put_bytes(content, media_type=media, filename=name)
            documents.append(ref_blob.to_dict())
        flow = FlowContext(flow_id, link.member_siren, "acte", link.submission_id)
        details = {"type_code": ref.type_code, "tdt_document_id": ref.id}
        if message is not None:
            for key in ("courrier_date", "motif", "description", "depot_date", "nature_illegalite"):
                value = message.fields.get(key)
                if isinstance(value, str) and value:
                    details[key] = value
        outputs = transition(
            deps, flow, stage=STAGE, state="acknowledged", previous="acknowledged",
            kind="PARTNER_MESSAGE", parent=None, partner_ref=link.id_acte, documents=documents,
            details=details, child_event=event_key,
            message=f"the prefecture sent a {_meaning(ref.type_code)} ({ref.type_code}) "
            f"about acte {link.id_acte}",
        )
        for out in outputs:
            await deps.journal.publish_raw(out.topic, key=out.key, value=out.value,
                                           headers=out.headers)
        self._delivered.add((flow_id, event_key))
        self.delivered += 1
        log.info("acts.prefecture_message_delivered", flow_id=flow_id, type_code=ref.type_code)
        return True

