"""The stage runner: consume a batch, handle each record, publish the outputs and the
consumer offsets in ONE Kafka transaction.

Delivery: either all outputs of a batch become visible to read_committed
consumers together with the batch's committed offsets, or none does and the
batch is read again. Handlers must therefore be safe to run twice for the same
record (partner calls carry idempotency keys; event ids are deterministic).

A handler that raises never stops the partition: the failure router turns the
record into a retry (next delay tier) or a dead letter, in the same transaction.
Records with the same key are handled in order; different keys concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from relais.flows.outbound import Outbound
from relais.kafka.lifecycle import stop_loop
from relais.stages import headers as h
from relais.stages.failures import FailureRouter
from relais.stages.instance import fresh_transactional_producer
from relais.stages.records import InputRecord
from relais.wire.headers import FLOW_ID_HEADER

log = structlog.get_logger(__name__)

Handler = Callable[[InputRecord], Awaitable[list[Outbound]]]



@dataclass
class StageStats:
    """Counts since start, for logs, `relais health` and tests."""

    handled: int = 0
    failed: int = 0
    batches: int = 0
    last_batch_at: float = 0.0


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
        max_records: int = 200,
        metadata_max_age_ms: int = 3000,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        if bool(topics) == bool(pattern):
            raise ValueError("give either topics or a pattern")
        self.stage = stage
        self.group_id = group_id
        self._bootstrap = bootstrap_servers
        self._handler = handler
        self._router = router
        self._topics = topics
        self._pattern = pattern
        self._concurrency = concurrency
        self._max_records = max_records
        self._metadata_max_age_ms = metadata_max_age_ms
        self._paused = paused
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = StageStats()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=self._metadata_max_age_ms,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=900000,
        )
        if self._pattern:
            self._consumer.subscribe(pattern=self._pattern)
        else:
            self._consumer.subscribe(topics=list(self._topics))
        await self._new_producer()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"stage-{self.stage}")
        log.info("stage.started", stage=self.stage, topics=list(self._topics),
                 pattern=self._pattern)

    async def _new_producer(self) -> None:
        self._producer = await fresh_transactional_producer(
            self._bootstrap, self.group_id, self._producer
        )

    async def stop(self) -> None:
        await stop_loop(self._task, self._consumer, self._producer)
        log.info("stage.stopped", stage=self.stage, handled=self.stats.handled,
                 failed=self.stats.failed)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            if self._paused is not None and self._paused():
                await asyncio.sleep(1.0)
                continue
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=1000, max_records=self._max_records
                )
            except (KafkaError, AssertionError) as exc:  # AssertionError: mid-rebalance
                log.warning("stage.fetch_failed", stage=self.stage, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if not batches:
                continue
            try:
                await self._process(batches)
            except KafkaError as exc:
                log.error("stage.batch_failed_will_retry", stage=self.stage, error=str(exc))
                await self._recover(list(batches))
            except Exception:  # a bug past the router: keep the stage alive, retry the batch
                log.exception("stage.batch_bug_will_retry", stage=self.stage)
                await self._recover(list(batches))

    async def _recover(self, partitions: list[TopicPartition]) -> None:
        await asyncio.sleep(1.0)
        try:
            await self._new_producer()
        except KafkaError as exc:
            log.warning("stage.producer_restart_failed", stage=self.stage, error=str(exc))
        await self._rewind(partitions)

    async def _process(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self._producer is not None
        records = [record for tp_records in batches.values() for record in tp_records]
        results: list[list[Outbound]] = [[] for _ in records]
        groups: dict[tuple[str, int, bytes | None], list[int]] = {}
        for index, record in enumerate(records):
            groups.setdefault((record.topic, record.partition, record.key), []).append(index)
        gate = asyncio.Semaphore(self._concurrency)

        async def run_group(indexes: list[int]) -> None:
            async with gate:
                for index in indexes:
                    results[index] = await self._handle(records[index])

        await asyncio.gather(*(run_group(indexes) for indexes in groups.values()))
        offsets = {tp: tp_records[-1].offset + 1 for tp, tp_records in batches.items()}
        async with self._producer.transaction():
            for outputs in results:
                for out in outputs:
                    await self._producer.send(out.topic, out.value, key=out.key,
                                              headers=out.headers)
            await self._producer.send_offsets_to_transaction(offsets, self.group_id)
        self.stats.handled += len(records)
        self.stats.batches += 1
        self.stats.last_batch_at = asyncio.get_running_loop().time()

    async def _handle(self, record: ConsumerRecord) -> list[Outbound]:  # type: ignore[type-arg]
        headers = list(record.headers or ())
        with structlog.contextvars.bound_contextvars(
            stage=self.stage, topic=record.topic, partition=record.partition,
            offset=record.offset, flow_id=h.get(headers, FLOW_ID_HEADER),
            member=h.get(headers, h.MEMBER),
        ):
            try:
                return await self._handler(record)
            except Exception as exc:
                self.stats.failed += 1
                if self._router is None:
                    log.exception("stage.failed_without_router", stage=self.stage)
                    raise
                try:
                    return self._router.route(record, exc)
                except Exception:
                    log.exception("stage.router_bug", stage=self.stage)
                    raise

    async def _rewind(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        for tp in partitions:
            with contextlib.suppress(Exception):
                offset = await self._consumer.committed(tp)
                if offset is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, offset)
