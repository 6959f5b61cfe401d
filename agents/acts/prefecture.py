"""acts-prefecture: fetches the prefecture's messages (2-1 courrier simple, 3-1 demande de
pièces complémentaires, 4-1 lettre d'observations, 5-1 déféré au tribunal administratif)
from each member's TdT and delivers them to the member, linked to their acte.

Runs on the faust leader only, every few seconds. The TdT lists unread messages as
transactions of type 2 to 5 (S²LOW's ``api/list_document_prefecture.php``); the
message code (``4-1``…) is read from the ACTES XML inside the message's archive. A
message is tied to its acte by the TdT transaction it names, so it is delivered
even when listed before the acte's acknowledgement; one whose transaction is not
known yet waits for the next round. The same message listed twice (under two ids)
carries the same event id, derived from its content, and is delivered once per
process.

A message whose fetch, archive or storage fails is tried again at the next round,
once when the failure is not retriable (an archive that cannot be read stays
unreadable); a retriable failure (TdT busy, timeout) is retried at each round until
it has failed ``max_attempts`` times *and* for at least ``retry_window`` seconds, so
a TdT outage of minutes does not dead-letter every message. Then it is dead-lettered:
a record describing it goes to ``relais.dlq.acts-prefecture`` and the member gets a
``FAILED`` notification about its acte (the acte's state does not change). It
stays unread at the TdT, so after the cause is fixed a restarted worker fetches it
again. The archive goes from the TdT into the blob store as it arrives
(``save_prefecture_document``), owned by the member and named in the notification's
``tdt_archive_sha256``; it is then opened off the event loop with size, entry and time limits
(:mod:`relais.actes.archive_reader`, which reads it whole: up to ``max_acte_bytes``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Protocol

import structlog

from agents.acts.deps import ActsDeps
from agents.acts.events import transition
from connectors.tdt.models import PrefectureDocumentRef
from relais.actes.archive_reader import ArchiveLimits, read_partner_archive
from relais.actes.codes import MESSAGE_TYPE_BY_CODE
from relais.actes.xml_parse import ActesMessage, parse_message
from relais.blobs.model import BlobRef
from relais.blobs.sniff import sniff_media_type
from relais.errors import PartnerReplyError, Reason, RelaisError
from relais.flows.outbound import FlowContext
from relais.members.model import Member
from relais.stages import headers as h
from relais.wire.headers import FLOW_ID_HEADER
from topics.catalogue import dlq

log = structlog.get_logger(__name__)
STAGE = "acts-prefecture"
DEFAULT_MAX_ATTEMPTS = 5
#: How long a message may keep failing for retriable reasons before its dead letter.
DEFAULT_RETRY_WINDOW_SECONDS = 3600.0
#: The prefecture's first message of each TdT transaction type (2 to 5).
FIRST_MESSAGE = {"2": "2-1", "3": "3-1", "4": "4-1", "5": "5-1"}


class MemberList(Protocol):
    def all(self) -> list[Member]: ...


def _meaning(type_code: str) -> str:
    entry = MESSAGE_TYPE_BY_CODE.get(type_code)
    return entry.meaning if entry is not None else "message"


async def _business_message(files: dict[str, bytes], tdt_type: str) -> ActesMessage:
    """The ACTES message of the archive: the one of the transaction's type, else the first
    that is not an envelope. Raises PartnerReplyError when the archive holds none."""
    found: list[ActesMessage] = []
    for name, content in files.items():
        if not name.lower().endswith(".xml"):
            continue
        try:
            message = await asyncio.to_thread(parse_message, content)
        except RelaisError:
            continue
        if not message.type_code.startswith("enveloppe"):
            found.append(message)
    for message in found:
        if message.type_code.split("-")[0] == tdt_type:
            return message
    if found:
        return found[0]
    raise PartnerReplyError(
        "the prefecture message's archive holds no ACTES message", partner="tdt",
        reasons=[Reason("archive", "no_actes_message",
                        f"no ACTES message among {sorted(files)[:20]}")],
    )


@dataclass
class _Attempts:
    count: int = 0
    first_at: float = 0.0


class PrefectureWatcher:
    def __init__(
        self,
        deps: ActsDeps,
        members: MemberList,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_window: float = DEFAULT_RETRY_WINDOW_SECONDS,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        self._deps = deps
        self._members = members
        self._max_attempts = max(1, max_attempts)
        self._retry_window = max(0.0, retry_window)
        self._limits = archive_limits or ArchiveLimits(max_bytes=deps.max_acte_bytes)
        self._delivered: set[tuple[str, str]] = set()
        self._done: set[tuple[str, str]] = set()
        self._dead: set[tuple[str, str]] = set()
        self._waiting: set[tuple[str, str]] = set()
        self._attempts: dict[tuple[str, str], _Attempts] = {}
        self.delivered = 0
        self.dead_lettered = 0

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
            key = (member.tdt.url, ref.id)
            if key in self._dead or ref.related_transaction_id is None:
                continue
            flow_id = self._deps.links.flow_of_transaction(member.tdt.url,
                                                           ref.related_transaction_id)
            link = self._deps.links.get(flow_id) if flow_id is not None else None
            if flow_id is None or link is None:
                if key not in self._waiting:
                    self._waiting.add(key)
                    log.info("acts.prefecture_message_waits", document=ref.id,
                             transaction_id=ref.related_transaction_id)
                continue
            self._waiting.discard(key)
            try:
                if key not in self._done:
                    archive = await connector.save_prefecture_document(ref.id, partial(
                        self._deps.blobs.put_stream, media_type="application/gzip",
                        filename=f"tdt-document-{ref.id}.tar.gz", owner=link.member_siren))
                    if await self._deliver(flow_id, ref, archive):
                        delivered += 1
                    self._done.add(key)
                    self._attempts.pop(key, None)
                await connector.mark_prefecture_document_read(ref.id)
            except RelaisError as exc:
                if key in self._done:  # delivered; only marking it read failed
                    log.warning("acts.prefecture_mark_read_failed", document=ref.id,
                                error=str(exc))
                    continue
                await self._failed(key, flow_id, ref, exc)
        return delivered

    async def _failed(
        self, key: tuple[str, str], flow_id: str, ref: PrefectureDocumentRef, exc: RelaisError
    ) -> None:
        attempts = self._attempts.setdefault(key, _Attempts(first_at=time.time()))
        attempts.count += 1
        failing_for = time.time() - attempts.first_at
        if exc.retriable and (attempts.count < self._max_attempts
                              or failing_for < self._retry_window):
            # this message waits for the next round; the others go on now
            log.warning("acts.prefecture_message_failed", document=ref.id, error=str(exc),
                        code=exc.code, attempt=attempts.count, retriable=True)
            return
        try:
            await self._dead_letter(key[0], flow_id, ref, exc, attempts)
        except RelaisError as publish_error:
            log.error("acts.prefecture_dead_letter_failed", document=ref.id,
                      error=str(publish_error))
            return
        self._dead.add(key)
        self._attempts.pop(key, None)

    async def _dead_letter(
        self, tdt_url: str, flow_id: str, ref: PrefectureDocumentRef, exc: RelaisError,
        attempts: _Attempts,
    ) -> None:
        deps = self._deps
        link = deps.links.get(flow_id)
        member = link.member_siren if link is not None else None
        message = str(exc) or exc.__class__.__name__
        log.error("acts.prefecture_dead_lettered", document=ref.id, flow_id=flow_id,
                  code=exc.code, attempts=attempts.count, error=message)
        now = str(int(time.time() * 1000))
        headers = h.replace(
            [],
            **{
                FLOW_ID_HEADER: flow_id,
                h.MEMBER: member,
                h.DLQ_STAGE: STAGE,
                h.DLQ_ERROR_CLASS: f"{exc.__class__.__module__}.{exc.__class__.__name__}",
                h.DLQ_ERROR_CODE: exc.code,
                h.DLQ_ERROR_MESSAGE: message[:2000],
                h.ATTEMPT: str(attempts.count),
                h.FIRST_FAILURE_AT: str(int(attempts.first_at * 1000)),
                h.LAST_FAILURE_AT: now,
            },
        )
        value = {
            "tdt_url": tdt_url, "document_id": ref.id, "type": ref.type,
            "related_transaction_id": ref.related_transaction_id, "number": ref.number,
            "unique_id": ref.unique_id, "flow_id": flow_id,
            "reasons": [asdict(reason) for reason in exc.reasons],
        }
        await deps.journal.publish_raw(
            dlq(STAGE).name, key=flow_id, value=json.dumps(value).encode(), headers=headers,
        )
        self.dead_lettered += 1
        if link is None:
            return
        flow = FlowContext(flow_id, link.member_siren, "acte", link.submission_id)
        meaning = _meaning(FIRST_MESSAGE.get(ref.type, ""))
        outputs = transition(
            deps, flow, stage=STAGE, state="acknowledged", previous="acknowledged",
            kind="FAILED", parent=None, partner_ref=link.id_acte,
            reasons=[Reason("tdt_document", exc.code, message[:500])],
            details={"tdt_document_id": ref.id, "tdt_type": ref.type, "stage": STAGE,
                     "error_code": exc.code, "attempts": str(attempts.count)},
            child_event=f"prefecture-failed:{ref.id}",
            message=f"the prefecture sent a {meaning} (TdT document {ref.id}) about acte "
            f"{link.id_acte}, but Relais could not deliver it after {attempts.count} "
            f"attempt(s): {message[:300]}; operators were alerted, read it on the TdT",
        )
        for out in outputs:
            await deps.journal.publish_raw(out.topic, key=out.key, value=out.value,
                                           headers=out.headers)

    async def _archive_bytes(self, archive: BlobRef) -> bytes:
        """The stored archive, read back for :func:`read_partner_archive` (bytes in)."""
        buffer = io.BytesIO()
        chunks = self._deps.blobs.open(archive.sha256)
        async for chunk in chunks:
            buffer.write(chunk)
        return buffer.getvalue()

    async def _deliver(self, flow_id: str, ref: PrefectureDocumentRef, archive: BlobRef) -> bool:
        deps = self._deps
        link = deps.links.get(flow_id)
        if link is None:
            return False
        files = await read_partner_archive(await self._archive_bytes(archive), partner="tdt",
                                           limits=self._limits)
        message = await _business_message(files, ref.type)
        type_code = message.type_code
        content_key = hashlib.sha256(message.raw).hexdigest()[:16]
        event_key = f"{type_code}:{content_key}"
        if (flow_id, event_key) in self._delivered:
            log.info("acts.prefecture_duplicate", document=ref.id, type_code=type_code)
            return False
        documents: list[dict[str, Any]] = []
        for name, content in sorted(files.items()):
            media = sniff_media_type(content[:16]) or "application/octet-stream"
            ref_blob = await deps.blobs.put_bytes(content, media_type=media, filename=name,
                                                  owner=link.member_siren)
            documents.append(ref_blob.to_dict())
        flow = FlowContext(flow_id, link.member_siren, "acte", link.submission_id)
        details = {"type_code": type_code, "tdt_document_id": ref.id, "tdt_type": ref.type,
                   "tdt_archive_sha256": archive.sha256}
        for field in ("courrier_date", "motif", "description", "depot_date", "nature_illegalite"):
            value = message.fields.get(field)
            if isinstance(value, str) and value:
                details[field] = value
        outputs = transition(
            deps, flow, stage=STAGE, state="acknowledged", previous="acknowledged",
            kind="PARTNER_MESSAGE", parent=None, partner_ref=link.id_acte, documents=documents,
            details=details, child_event=event_key,
            message=f"the prefecture sent a {_meaning(type_code)} ({type_code}) "
            f"about acte {link.id_acte}",
        )
        for out in outputs:
            await deps.journal.publish_raw(out.topic, key=out.key, value=out.value,
                                           headers=out.headers)
        self._delivered.add((flow_id, event_key))
        self.delivered += 1
        log.info("acts.prefecture_message_delivered", flow_id=flow_id, type_code=type_code)
        return True
