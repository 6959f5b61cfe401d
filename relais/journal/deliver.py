"""Deliver exactly once: the journal makes a partner call safe to repeat.

1. Before calling, the intent (POSTING) is published and acknowledged by the broker.
2. The partner is called (most partners know no idempotency key: the journal's own
   key stays in the journal).
3. The outcome (POSTED with the partner's reference, or REFUSED) is published by the
   caller in its stage's transaction (:func:`entry_outbound`).

An entry already POSTED, UNCERTAIN or REFUSED was dealt with: nothing is sent. One
found POSTING (a crash or a timeout came between 1 and 3) is reconciled first (the
caller's ``reconcile`` asks the partner whether it holds what was sent) and the call is
made only when the partner proves it absent. When the partner cannot tell *now*
(``PartnerTransientError``) the retriable :class:`ReconciliationPendingError` is
raised: the stage retries along its tiers, then dead-letters with the entry still
POSTING (a replay reconciles first). When it can never tell
(``PartnerPermanentError``) the outcome is :class:`Uncertain`. A refusal
(``PartnerRefusedError``) after a possibly-posted attempt reconciles once more: the
refusal may be about our own earlier call. Nothing here knows a protocol: partners
speak through the errors of ``relais/errors.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from relais.errors import PartnerPermanentError, PartnerRefusedError, PartnerTransientError
from relais.flows.ids import event_id_for
from relais.flows.outbound import Outbound, encode_outbound
from relais.journal.entry import DONE, JournalEntry
from relais.stages import local_writes
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.journal import DELIVERY_JOURNAL

log = structlog.get_logger(__name__)
SCHEMA = DELIVERY_JOURNAL.value_schema


class ReconciliationPendingError(PartnerTransientError):
    """The partner cannot tell now whether an earlier call arrived.

    Retriable: the stage runner retries the record along the retry tiers. When the
    tiers are spent the record is dead-lettered like any other (flow *failed*); its
    journal entry stays POSTING, so a replay reconciles again before calling.
    """

    code = "reconciliation_pending"

    def __init__(self, cause: PartnerTransientError) -> None:
        super().__init__(
            f"the partner cannot tell yet whether an earlier call arrived: {cause.message}",
            partner=cause.partner, retry_after=cause.retry_after,
        )


class AckedPublisher(Protocol):
    """Publishes outside a stage's transaction; returns once the broker acknowledged."""

    async def publish(
        self, topic: str, *, key: str | bytes | None, schema_name: str,
        record: dict[str, Any], headers: EventHeaders,
    ) -> None: ...


class JournalWriter(Protocol):
    """The journal view's local write (the stage sees its own entries at once)."""

    def put_local(self, entry: JournalEntry) -> None: ...


@dataclass(frozen=True)
class Journal:
    """Where a stage records its journal entries."""

    view: JournalWriter
    publisher: AckedPublisher
    stage: str

    async def publish_acknowledged(self, entry: JournalEntry, parent: EventHeaders | None) -> None:
        """Publish ``entry`` outside the stage transaction, acknowledged before returning."""
        await self.publisher.publish(
            DELIVERY_JOURNAL.name, key=entry.journal_key, schema_name=SCHEMA,
            record=entry.to_record(),
            headers=EventHeaders.new(source=f"/relais/hub/{self.stage}",
                                     type="fr.relais.journal.JournalEntry",
                                     subject=entry.flow_id, flow_id=entry.flow_id, parent=parent),
        )
        with local_writes.durable():  # acknowledged: it stands whatever the batch becomes
            self.view.put_local(entry)


@dataclass(frozen=True)
class AlreadyDone:
    """The entry was POSTED, UNCERTAIN or REFUSED already: nothing was sent."""

    entry: JournalEntry


@dataclass(frozen=True)
class Delivered:
    """The partner holds it: ``entry`` is POSTED with its ``partner_ref``.
    ``reconciled``: found at the partner, not created by this attempt."""

    entry: JournalEntry
    reconciled: bool = False


@dataclass(frozen=True)
class Uncertain:
    """The partner can never tell whether an earlier call arrived: ``entry`` is UNCERTAIN."""

    entry: JournalEntry
    why: str


@dataclass(frozen=True)
class Refused:
    """The partner refused and created nothing: ``entry`` is REFUSED, its keys are free."""

    entry: JournalEntry
    error: PartnerRefusedError


Outcome = AlreadyDone | Delivered | Uncertain | Refused


async def _reconciled(reconcile: Callable[[], Awaitable[str | None]]) -> str | None:
    try:
        return await reconcile()
    except PartnerTransientError as exc:
        log.warning("journal.reconciliation_pending", error=exc.message)
        raise ReconciliationPendingError(exc) from exc


async def deliver_exactly_once(
    entry: JournalEntry,
    *,
    journal: Journal,
    call: Callable[[], Awaitable[str]],
    reconcile: Callable[[], Awaitable[str | None]],
    parent: EventHeaders | None = None,
) -> Outcome:
    """Make ``call`` (which returns the partner's reference) at most once for ``entry``'s flow.

    ``reconcile`` returns the partner's reference of what an earlier call created, or
    None when the partner proves it absent. The outcome's entry is already visible
    locally; publish it in the stage transaction with :func:`entry_outbound`."""
    # no log.bind per call: binding costs about as much as a line, and most calls log none
    who = {"flow_id": entry.flow_id, "partner": entry.partner}
    if entry.step in DONE:
        log.info("journal.delivery_skipped", **who, step=entry.step)
        return AlreadyDone(entry)
    maybe_posted = entry.step == "POSTING"  # an earlier attempt may have reached the partner
    if maybe_posted:
        try:
            found = await _reconciled(reconcile)
        except PartnerPermanentError as exc:
            log.warning("journal.delivery_uncertain", **who, error=exc.message)
            parked = entry.moved("UNCERTAIN")
            journal.view.put_local(parked)
            return Uncertain(parked, exc.message)
        if found is not None:
            log.info("journal.reconciled", **who, partner_ref=found)
            return _posted(journal, entry, found, reconciled=True)
    await journal.publish_acknowledged(entry.moved("POSTING"), parent)
    try:
        partner_ref = await call()
    except PartnerRefusedError as exc:
        if maybe_posted:
            # A partner's listings may miss what moved meanwhile and then refuse a
            # duplicate: ask again, the refusal may be about our own earlier call.
            found = await _reconciled(reconcile)
            if found is not None:
                log.info("journal.reconciled_after_refusal", **who, partner_ref=found,
                           refusal=exc.message)
                return _posted(journal, entry, found, reconciled=True)
        log.info("journal.partner_refused", **who, error=exc.message)
        refused = entry.moved("REFUSED")
        journal.view.put_local(refused)
        return Refused(refused, exc)
    return _posted(journal, entry, partner_ref, reconciled=False)


def _posted(journal: Journal, entry: JournalEntry, partner_ref: str, *,
            reconciled: bool) -> Delivered:
    posted = entry.moved("POSTED", partner_ref=partner_ref)
    journal.view.put_local(posted)
    return Delivered(posted, reconciled=reconciled)


def entry_outbound(
    codec: AvroCodec, entry: JournalEntry, *, stage: str, parent: EventHeaders | None,
    event_parts: tuple[str, ...] = (),
) -> Outbound:
    """The journal entry as a record of the stage's transaction (an outcome, or an
    operator's correction: ``event_parts`` tells such repeated steps apart)."""
    return encode_outbound(
        codec, topic=DELIVERY_JOURNAL.name, key=entry.journal_key, schema_name=SCHEMA,
        record=entry.to_record(), source=f"/relais/hub/{stage}",
        event_id=event_id_for(entry.flow_id, "journal", entry.partner, entry.step,
                              *event_parts),
        subject=entry.flow_id, flow_id=entry.flow_id, parent=parent,
    )
