"""The stage runner: consume a batch, handle each record, publish the outputs and the
consumer offsets in ONE Kafka transaction.

Delivery: either all outputs of a batch become visible to read_committed
consumers together with the batch's committed offsets, or none does and the
batch is read again. Handlers must therefore be safe to run twice for the same
record (partner calls carry idempotency keys; event ids are deterministic).

A handler that raises never stops the partition: the failure router turns the
record into a retry (next delay tier) or a dead letter, in the same transaction.
Records with the same key are handled in order; different keys concurrently.

When a batch fails for another reason:

- a Kafka error (broker away, producer fenced): a new producer, the partitions
  seek back to their committed offsets, and the batch is read again, for as long
  as it takes (an outage is waited out, nothing is dead-lettered for it);
- a bug past the router (the router or a handler without one raised, a send
  refused an output, an output too large for Kafka): the batch is read again after 1 s, 2 s, 4 s…
  (``bug_backoff``, at most ``max_bug_backoff``), ``max_bug_attempts`` times in
  all; then each record of the batch is handled on its own, in a transaction of
  its own, and a record that still fails is dead-lettered with the stack (the
  member told when its headers say who it is), so the partition moves on;
- seeking back fails: the consumer is stopped and a new one joins the group,
  which starts every partition at its committed offset. Nothing is committed
  from a position that was not rewound, so no record is skipped.

A batch whose records publish nothing (a stage that only watches, e.g. archive-acts over
every flow event) opens no transaction of its own: its offsets wait, and go in the next
transaction the stage commits (the next batch that publishes), or in one of their own once
``idle_commit_seconds`` passed or the input is idle. Until then they are uncommitted like
a batch in hand: a crash or a rebalance reads those records again, which handlers allow,
and a handler that publishes nothing publishes nothing the second time either. Pending
offsets of a partition the stage no longer holds are dropped, never committed, and a
rewind drops them all.

The local view writes a handler makes (``put_local``) are taken back when its outputs are
not committed: the handler raised, or the batch failed and is read again
(``relais.stages.local_writes``); a record read again finds the views as they were.

Handling overlaps committing: while batch N's transaction commits (a task of its own),
the runner fetches and handles batch N+1, and starts N+1's transaction only once N's has
committed (one transaction at a time, in batch order). When N's commit fails, N+1 was
handled ahead of a commit that did not happen: its outputs are dropped, its local writes
taken back (before N's), and its partitions rewound to their committed offsets with N's,
so both are read again (or, past the bug cap, N is isolated and N+1 read again after it).
Handlers are safe to run twice, so a partner call N+1 made ahead is like one made by a
worker that crashed before its commit. ``overlap_commits=False`` handles a batch only after
the previous one committed (the runner before the overlap, kept for comparison).

``prepare`` turns each consumed record into what the stage may read before the
handler, the router or the logs see it (the ingress drops a member's
``relais_*`` headers there).

A handler may keep state for the batch it is part of in :func:`batch_scope` (a dict
that lives for one batch: e.g. a wait budget the batch's records share), and a stage
may be told when partitions are assigned to it (``on_assigned``: e.g. the owner of a
registry's partition resets its quota bucket from the last owner's published state).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)

from relais.flows.outbound import Outbound
from relais.kafka import clients as kafka_clients
from relais.kafka.lifecycle import stop_loop
from relais.stages import headers as h
from relais.stages import local_writes
from relais.stages.failures import FailureRouter, dead_letter_record, describe
from relais.stages.instance import fresh_transactional_producer
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER
from topics.catalogue import dlq

log = structlog.get_logger(__name__)

Handler = Callable[[InputRecord], Awaitable[list[Outbound]]]
Prepare = Callable[[InputRecord], InputRecord]
#: Builds a consumer (not started, not subscribed); tests pass fakes.
ConsumerFactory = Callable[[], Any]
#: Starts a transactional producer replacing the previous one; tests pass fakes.
ProducerFactory = Callable[[Any], Awaitable[Any]]
Batches = dict[TopicPartition, list[Any]]
#: Kafka errors caused by what a handler produced (an output too large, a topic name that
#: cannot exist), not by the broker's state: reading the batch again cannot help, so they
#: count as bugs (capped, then dead-lettered) instead of being waited out like an outage.
CONTENT_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError)
#: Records fetched per batch (one transaction) unless a stage asks for fewer.
DEFAULT_MAX_RECORDS = 500
#: How long the broker may hold a fetch with nothing new (aiokafka's default). While one
#: fetch is held, no other is sent to that broker, even for a partition whose records the
#: stage has just taken: a lower value lets those be fetched again sooner.
DEFAULT_FETCH_MAX_WAIT_MS = 500
#: Called with the partitions the stage holds whenever that changes: none when a rebalance
#: begins (they are revoked), then every one the rebalance assigned (not only the new ones).
OnAssigned = Callable[[set[TopicPartition]], Awaitable[None]]

_BATCH_SCOPE: ContextVar[dict[str, Any] | None] = ContextVar("relais_batch_scope", default=None)


def batch_scope() -> dict[str, Any] | None:
    """A dict shared by the handlers of the batch being handled (fresh for each batch,
    each isolated record too); ``None`` outside a stage runner (e.g. a unit test calling a
    handler directly)."""
    return _BATCH_SCOPE.get()


class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds a rebalance until the stage's commit under way has ended (so the partitions'
    next owner starts from offsets the old one no longer changes), and tells the stage's
    hook, if it has one, what it holds."""

    def __init__(self, stage: str, on_assigned: OnAssigned | None,
                 commit_ended: Callable[[], Awaitable[None]]) -> None:
        self._stage = stage
        self._on_assigned = on_assigned
        self._commit_ended = commit_ended

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._commit_ended()
        await self._tell(set())  # a rebalance begins: the stage holds nothing until it ends

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._tell(set(assigned))

    async def _tell(self, held: set[TopicPartition]) -> None:
        if self._on_assigned is None:
            return
        try:
            await self._on_assigned(held)
        except Exception as exc:  # a hook's bug must not break the group's rebalance
            log.error("stage.on_assigned_failed", stage=self._stage, error=describe(exc),
                      exc_info=exc)


@dataclass
class StageStats:
    """Counts since start, for logs, `relais health` and tests."""

    handled: int = 0
    failed: int = 0
    batches: int = 0
    last_batch_at: float = 0.0
    batch_bugs: int = 0
    bug_dead_letters: int = 0
    consumer_restarts: int = 0
    #: Kafka transactions committed (one per batch; one per record past the bug cap)
    transactions: int = 0
    #: records sent in those transactions (the consumer offsets not counted)
    outputs: int = 0


@dataclass
class _Handled:
    """A batch handled, not committed yet."""

    batches: Batches
    records: int
    outputs: list[Outbound]
    offsets: dict[TopicPartition, int]
    #: the batch's local view writes, taken back when its commit fails
    writes: list[local_writes.Undo]
    started: float
    handled: float


class StageRunner:
    """Runs one stage: a consumer group over its input topics and a transactional producer."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        stage: str,
        group_id: str,
        handler: Handler,
        router: FailureRouter | None,
        topics: tuple[str, ...] = (),
        pattern: str | None = None,
        concurrency: int = 16,
        max_records: int = DEFAULT_MAX_RECORDS,
        fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS,
        metadata_max_age_ms: int = 3000,
        paused: Callable[[], bool] | None = None,
        prepare: Prepare | None = None,
        max_bug_attempts: int = 5,
        bug_backoff: float = 1.0,
        max_bug_backoff: float = 30.0,
        retry_delay: float = 1.0,
        consumer_factory: ConsumerFactory | None = None,
        producer_factory: ProducerFactory | None = None,
        idle_commit_seconds: float = 1.0,
        on_assigned: OnAssigned | None = None,
        overlap_commits: bool = True,
    ) -> None:
        if bool(topics) == bool(pattern):
            raise ValueError("give either topics or a pattern")
        if max_bug_attempts < 1:
            raise ValueError("max_bug_attempts must be at least 1")
        self.stage = stage
        self.group_id = group_id
        self._bootstrap = bootstrap_servers
        self._handler = handler
        self._router = router
        self._dlq_topic = router.dlq_topic if router is not None else dlq(stage).name
        self._topics = topics
        self._pattern = pattern
        self._concurrency = concurrency
        self._max_records = max_records
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._metadata_max_age_ms = metadata_max_age_ms
        self._paused = paused
        self._prepare = prepare
        self._max_bug_attempts = max_bug_attempts
        self._bug_backoff = bug_backoff
        self._max_bug_backoff = max_bug_backoff
        self._retry_delay = retry_delay
        self._consumer_factory = consumer_factory or self._kafka_consumer
        self._producer_factory = producer_factory or self._kafka_producer
        self._on_assigned = on_assigned
        self._consumer: Any = None
        self._producer: Any = None
        self._task: asyncio.Task[None] | None = None
        #: partition → (first offset of the failing batch, bugs in a row there)
        self._bugs: dict[TopicPartition, tuple[int, int]] = {}
        #: offsets of handled batches that published nothing, not committed yet
        self._pending: dict[TopicPartition, int] = {}
        self._pending_since = 0.0
        self._idle_commit_seconds = idle_commit_seconds
        self._overlap_commits = overlap_commits
        #: the batch whose transaction is committing while the next one is handled
        self._inflight: tuple[_Handled, asyncio.Task[None]] | None = None
        self.stats = StageStats()

    # -- clients ---------------------------------------------------------------------------

    def _kafka_consumer(self) -> AIOKafkaConsumer:
        return kafka_clients.consumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=self._metadata_max_age_ms,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=900000,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )

    async def _kafka_producer(self, previous: AIOKafkaProducer | None) -> AIOKafkaProducer:
        return await fresh_transactional_producer(self._bootstrap, self.group_id, previous)

    async def _start_consumer(self) -> Any:
        consumer = self._consumer_factory()
        listener = _AssignmentListener(self.stage, self._on_assigned, self._commit_ended)
        if self._pattern:
            consumer.subscribe(pattern=self._pattern, listener=listener)
        else:
            consumer.subscribe(topics=list(self._topics), listener=listener)
        await consumer.start()
        return consumer

    async def _new_producer(self) -> None:
        self._producer = await self._producer_factory(self._producer)

    async def start(self) -> None:
        await self._new_producer()
        self._consumer = await self._start_consumer()
        self._task = asyncio.create_task(self._run(), name=f"stage-{self.stage}")
        log.info("stage.started", stage=self.stage, topics=list(self._topics),
                 pattern=self._pattern)

    async def stop(self) -> None:
        await stop_loop(self._task, self._consumer, self._producer)
        log.info("stage.stopped", stage=self.stage, handled=self.stats.handled,
                 failed=self.stats.failed, batches=self.stats.batches,
                 transactions=self.stats.transactions, outputs=self.stats.outputs)

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            await self._abandon_inflight()

    async def _commit_ended(self) -> None:
        """Returns once the commit under way, if any, has ended (committed or failed: its
        outcome is the loop's to handle)."""
        inflight = self._inflight
        if inflight is not None:
            await asyncio.wait({inflight[1]})

    async def _abandon_inflight(self) -> None:
        """The stage stops: a commit still running is cancelled (its batch is read again
        by the partitions' next owner, like any batch not committed)."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        handled, task = inflight
        task.cancel()
        # cancelled, or failed: not committed either way
        outcome = (await asyncio.gather(task, return_exceptions=True))[0]
        if outcome is not None:
            local_writes.undo(handled.writes)

    async def _loop(self) -> None:
        while True:
            if self._consumer is None:  # a failed rewind stopped it: join the group again
                await self._restart_consumer()
                continue
            if self._paused is not None and self._paused():
                await self._settle()
                await asyncio.sleep(1.0)
                continue
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=1000, max_records=self._max_records
                )
            except (KafkaError, AssertionError) as exc:  # AssertionError: mid-rebalance
                log.warning("stage.fetch_failed", stage=self.stage, error=str(exc))
                await asyncio.sleep(self._retry_delay)
                continue
            except Exception as exc:  # the client could not parse what it fetched
                # The stage must not end silently; the records wait (relais health shows
                # the lag) until the cause is fixed.
                log.error("stage.fetch_bug", stage=self.stage, error=describe(exc),
                          exc_info=exc)
                await asyncio.sleep(self._max_bug_backoff)
                continue
            if batches:
                await self._step(batches)
            elif self._inflight is not None:  # nothing new: see the last commit through
                await self._settle()
            if self._pending:
                self._drop_revoked()
            idle_long_enough = not batches or (time.monotonic() - self._pending_since
                                               >= self._idle_commit_seconds)
            if self._pending and idle_long_enough and await self._settle():
                await self._commit_pending()

    def _drop_revoked(self) -> None:
        """Forget the pending offsets of partitions a rebalance took away: their next owner
        reads those records again, and an offset from before the rebalance is never
        committed over what that owner committed since."""
        assigned = self._assigned()
        for tp in [tp for tp in self._pending if tp not in assigned]:
            del self._pending[tp]

    async def _commit_pending(self) -> None:
        """The offsets of output-less batches, in a transaction of their own."""
        pending = dict(self._pending)
        try:
            await self._publish([], {})
        except KafkaError as exc:
            log.error("stage.batch_failed_will_retry", stage=self.stage, error=str(exc))
            await self._recover(list(pending), self._retry_delay)

    async def _step(self, batches: Batches) -> None:
        """Handle one batch while the previous one commits, then start its own commit; on
        failure, recover so that the batch is read again (or, past the bug cap, handle its
        records one by one)."""
        try:
            handled = await self._handle_batch(batches)
        except Exception as exc:  # its own writes are taken back already
            if await self._settle():
                await self._failed(batches, exc)
            else:
                await self._rewind_ahead(batches)
            return
        if not await self._settle(ahead=handled):
            await self._rewind_ahead(batches)
            return
        if not handled.outputs:  # nothing to publish: the offsets go with the next transaction
            self._committed(handled)
            return
        task = asyncio.create_task(self._commit(handled), name=f"stage-{self.stage}-commit")
        self._inflight = (handled, task)
        if not self._overlap_commits:
            await self._settle()

    async def _settle(self, ahead: _Handled | None = None) -> bool:
        """Wait for the committing batch, if any. True when it committed; when it failed,
        the batch ``ahead`` (handled meanwhile) has its local writes taken back first, the
        failed batch is recovered, and False tells the caller to rewind ``ahead``'s
        partitions too."""
        inflight = self._inflight  # kept until it ends: a revocation waits for it
        if inflight is None:
            return True
        handled, task = inflight
        try:
            await task
        except Exception as exc:
            self._inflight = None
            # newest first: a key both batches wrote goes back to what it was before both
            if ahead is not None:
                local_writes.undo(ahead.writes)
            local_writes.undo(handled.writes)
            await self._failed(handled.batches, exc)
            return False
        self._inflight = None
        self._clear_bugs(handled.batches)
        return True

    async def _rewind_ahead(self, batches: Batches) -> None:
        """A batch handled (or fetched) past a commit that failed: read it again from the
        committed offsets (after the failed batch's recovery, which may have committed
        that batch record by record)."""
        if self._consumer is not None and not await self._rewind(list(batches)):
            await self._restart_consumer()

    async def _failed(self, batches: Batches, exc: Exception) -> None:
        if isinstance(exc, CONTENT_ERRORS):
            await self._on_bug(batches, exc)
        elif isinstance(exc, KafkaError):
            log.error("stage.batch_failed_will_retry", stage=self.stage, error=str(exc))
            await self._recover(list(batches), self._retry_delay)
        else:
            await self._on_bug(batches, exc)

    async def _on_bug(self, batches: Batches, exc: Exception) -> None:
        self.stats.batch_bugs += 1
        attempts = self._note_bug(batches)
        delay = min(self._bug_backoff * 2 ** (attempts - 1), self._max_bug_backoff)
        if attempts < self._max_bug_attempts:
            log.error("stage.batch_bug_will_retry", stage=self.stage, attempt=attempts,
                      max_attempts=self._max_bug_attempts, retry_in=delay,
                      error=describe(exc), exc_info=exc)
            await self._recover(list(batches), delay)
            return
        log.error("stage.batch_bug_isolating", stage=self.stage, attempt=attempts,
                  records=sum(len(r) for r in batches.values()), error=describe(exc),
                  exc_info=exc)
        try:
            await self._new_producer()  # the failed transaction may have left it unusable
            await self._isolate(batches)
        except CONTENT_ERRORS as again:  # even a dead letter was refused: wait, read again
            log.error("stage.isolation_failed", stage=self.stage, retry_in=delay,
                      error=describe(again), exc_info=again)
            self._note_bug(batches)
            await self._recover(list(batches), delay)
            return
        except KafkaError as kafka_exc:
            log.error("stage.batch_failed_will_retry", stage=self.stage, error=str(kafka_exc))
            await self._recover(list(batches), self._retry_delay)
            return
        except Exception as again:  # even one record at a time failed: wait, read again
            log.error("stage.isolation_failed", stage=self.stage, retry_in=delay,
                      error=describe(again), exc_info=again)
            self._note_bug(batches)
            await self._recover(list(batches), delay)
            return
        self._clear_bugs(batches)

    def _note_bug(self, batches: Batches) -> int:
        """Count one more bug for the batch's partitions; the longest run among them."""
        attempts = 0
        for tp, records in batches.items():
            first = records[0].offset
            previous = self._bugs.get(tp)
            count = previous[1] + 1 if previous is not None and previous[0] == first else 1
            self._bugs[tp] = (first, count)
            attempts = max(attempts, count)
        return attempts

    def _clear_bugs(self, batches: Batches) -> None:
        for tp in batches:
            self._bugs.pop(tp, None)

    async def _recover(self, partitions: list[TopicPartition], delay: float) -> None:
        # the pending offsets' records are read again too (their partitions rewound)
        partitions = [*partitions, *(tp for tp in self._pending if tp not in partitions)]
        self._pending.clear()
        await asyncio.sleep(delay)
        try:
            await self._new_producer()
        except KafkaError as exc:
            log.warning("stage.producer_restart_failed", stage=self.stage, error=str(exc))
        if not await self._rewind(partitions):
            await self._restart_consumer()

    async def _rewind(self, partitions: list[TopicPartition]) -> bool:
        """Seek each partition still assigned back to its committed offset.

        False when one could not be (the broker did not answer, the seek was refused):
        the caller must then not read on with this consumer, whose position is past
        records that were never committed.
        """
        consumer = self._consumer
        if consumer is None:
            return False
        try:
            assigned = set(consumer.assignment())
        except Exception as exc:
            log.error("stage.rewind_failed", stage=self.stage, error=describe(exc),
                      exc_info=exc)
            return False
        for tp in partitions:
            if tp not in assigned:
                continue  # revoked meanwhile: its next owner starts at the committed offset
            try:
                offset = await consumer.committed(tp)
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
            except Exception as exc:
                log.error("stage.rewind_failed", stage=self.stage, topic=tp.topic,
                          partition=tp.partition, error=describe(exc), exc_info=exc)
                return False
        return True

    async def _restart_consumer(self) -> None:
        """Leave the group and join it again with a new consumer: every partition then
        starts at its committed offset. Retried until the broker answers."""
        self.stats.consumer_restarts += 1
        self._pending.clear()  # the new consumer starts at the committed offsets
        old, self._consumer = self._consumer, None
        log.error("stage.consumer_restarting", stage=self.stage)
        if old is not None:
            try:
                await old.stop()
            except Exception as exc:
                log.warning("stage.consumer_stop_failed", stage=self.stage, error=describe(exc))
        while self._consumer is None:
            try:
                self._consumer = await self._start_consumer()
            except Exception as exc:
                log.warning("stage.consumer_restart_failed", stage=self.stage,
                            error=describe(exc))
                await asyncio.sleep(self._retry_delay)
        log.info("stage.consumer_restarted", stage=self.stage)

    # -- handling --------------------------------------------------------------------------

    async def _handle_batch(self, batches: Batches) -> _Handled:
        """Every record of the batch handled; nothing published yet. When it raises, the
        batch's local writes are taken back."""
        started = time.perf_counter()
        records = [self._prepared(record) for tp_records in batches.values()
                   for record in tp_records]
        results: list[list[Outbound]] = [[] for _ in records]
        groups: dict[tuple[str, int, bytes | None], list[int]] = {}
        for index, record in enumerate(records):
            groups.setdefault((record.topic, record.partition, record.key), []).append(index)
        # At most `concurrency` workers take the key groups one after the other (one task
        # per worker, none for a batch of one group); after a failure they take no new
        # group, and every running group finishes before it is raised: none keeps
        # running while the batch is read again. The workers share one batch scope.
        waiting = iter(groups.values())
        failures: list[Exception] = []
        writes: list[local_writes.Undo] = []  # the batch's local view writes

        async def work() -> None:
            for indexes in waiting:
                if failures:
                    return
                try:
                    for index in indexes:
                        results[index] = await self._handle(records[index], writes)
                except Exception as exc:
                    failures.append(exc)
                    return

        workers = min(self._concurrency, len(groups))
        scope = _BATCH_SCOPE.set({})
        try:
            if workers <= 1:
                await work()
            else:
                await asyncio.gather(*(work() for _ in range(workers)))
            if failures:
                raise failures[0]
        except BaseException:
            local_writes.undo(writes)  # the batch is read again: its writes never happened
            raise
        finally:
            _BATCH_SCOPE.reset(scope)
        return _Handled(
            batches=batches, records=len(records),
            outputs=[out for outputs in results for out in outputs],
            offsets={tp: tp_records[-1].offset + 1 for tp, tp_records in batches.items()},
            writes=writes, started=started, handled=time.perf_counter())

    async def _commit(self, handled: _Handled) -> None:
        """The batch's outputs and offsets in one transaction (its local writes are taken
        back by whoever awaits it, after those of the batch handled ahead of it)."""
        await self._publish(handled.outputs, handled.offsets)
        self._committed(handled)

    def _committed(self, handled: _Handled) -> None:
        if not handled.outputs:  # nothing to publish: the offsets go with the next transaction
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.update(handled.offsets)
        self.stats.handled += handled.records
        self.stats.batches += 1
        self.stats.last_batch_at = asyncio.get_running_loop().time()
        log.debug("stage.batch_committed", stage=self.stage, records=handled.records,
                  outputs=len(handled.outputs),
                  handle_ms=round((handled.handled - handled.started) * 1000, 1),
                  commit_ms=round((time.perf_counter() - handled.handled) * 1000, 1))

    async def _publish(self, outputs: list[Outbound], offsets: dict[TopicPartition, int]) -> None:
        """``outputs`` and the consumer ``offsets`` in one transaction, with the pending
        offsets of output-less batches (of the partitions still assigned)."""
        if self._pending:
            assigned = self._assigned()
            offsets = {**{tp: o for tp, o in self._pending.items() if tp in assigned},
                       **offsets}
            self._pending.clear()  # committed below, or read again after the failure
        if not offsets and not outputs:
            return
        producer = self._producer
        async with producer.transaction():
            for out in outputs:
                await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        self.stats.transactions += 1
        self.stats.outputs += len(outputs)

    def _assigned(self) -> set[TopicPartition]:
        try:
            return set(self._consumer.assignment()) if self._consumer is not None else set()
        except Exception:  # mid-rebalance: commit none of the pending offsets
            return set()

    def _prepared(self, record: InputRecord) -> InputRecord:
        return self._prepare(record) if self._prepare is not None else record

    async def _handle(self, record: InputRecord,
                      writes: list[local_writes.Undo] | None = None) -> list[Outbound]:
        """The handler's outputs for ``record`` (the router's when it raised); the local
        view writes it made are added to ``writes``, those of a handler that raised are
        taken back."""
        headers = list(record.headers or ())
        mine: list[local_writes.Undo] = []
        with structlog.contextvars.bound_contextvars(
            stage=self.stage, topic=record.topic, partition=record.partition,
            offset=record.offset, flow_id=h.get(headers, FLOW_ID_HEADER),
            member=h.get(headers, h.MEMBER),
        ):
            try:
                with local_writes.collect(mine):
                    outputs = await self._handler(record)
                if writes is not None:
                    writes.extend(mine)
                return outputs
            except Exception as exc:
                local_writes.undo(mine)
                self.stats.failed += 1
                if self._router is None:
                    log.exception("stage.failed_without_router", stage=self.stage)
                    raise
                return self._router.route(record, exc)

    async def _isolate(self, batches: Batches) -> None:
        """Past the bug cap: each record handled and committed on its own; a record that
        still fails is dead-lettered with its stack, so the partition moves on."""
        for tp, tp_records in batches.items():
            for raw in tp_records:
                record = self._prepared(raw)
                offsets = {tp: raw.offset + 1}
                scope = _BATCH_SCOPE.set({})
                writes: list[local_writes.Undo] = []
                try:
                    outputs = await self._handle(record, writes)
                    await self._publish(outputs, offsets)
                except KafkaError as exc:
                    local_writes.undo(writes)
                    if not isinstance(exc, CONTENT_ERRORS):
                        raise
                    await self._publish(self._bug_letters(record, exc), offsets)
                except Exception as exc:
                    local_writes.undo(writes)
                    await self._publish(self._bug_letters(record, exc), offsets)
                else:
                    self.stats.handled += 1
                finally:
                    _BATCH_SCOPE.reset(scope)
            self._bugs.pop(tp, None)
        self.stats.batches += 1
        self.stats.last_batch_at = asyncio.get_running_loop().time()

    def _bug_letters(self, record: InputRecord, exc: Exception) -> list[Outbound]:
        """The dead letter of a record that keeps breaking the stage (and the member told,
        through the router, when it can)."""
        self.stats.bug_dead_letters += 1
        log.error("stage.record_dead_lettered_after_bugs", stage=self.stage, topic=record.topic,
                  partition=record.partition, offset=record.offset,
                  attempts=self._max_bug_attempts, error=describe(exc), exc_info=exc)
        now = str(int(time.time() * 1000))
        if self._router is not None:
            try:
                return self._router.dead_letter(record, exc, failures=self._max_bug_attempts,
                                                first=now, now=now)
            except Exception:
                log.exception("stage.router_dead_letter_failed", stage=self.stage)
        return [dead_letter_record(record, exc, stage=self.stage, group_id=self.group_id,
                                   dlq_topic=self._dlq_topic, attempts=self._max_bug_attempts,
                                   now=now)]
