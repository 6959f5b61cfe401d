"""The ingress loop: pattern-subscribed to every member's submissions topic.

Why not a faust agent: faust-streaming subscribes to explicit topic lists only
(its aiokafka driver's ``subscribe`` carries a "pattern does not work" note), and
members are registered while the hub runs. This loop uses aiokafka's pattern
subscription, so a new member's topic is consumed within
``metadata_max_age_ms`` without a restart.

Delivery: each batch is handled, and its outputs are published in ONE Kafka
transaction together with the batch's consumer offsets. Either all outputs of a
record are visible (to read_committed consumers) and its offset committed, or
none is and the batch is read again: no output is lost, none is duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from agents.ingress.handler import STAGE, IngressDeps, dead_letter, handle_submission
from relais.flows.outbound import Outbound
from topics.member import SUBMISSIONS_PATTERN

log = structlog.get_logger(__name__)


class IngressGateway:
    """Consumes submissions, publishes decisions transactionally."""

    def __init__(
        self,
        bootstrap_servers: str,
        deps: IngressDeps,
        *,
        group_id: str,
        metadata_max_age_ms: int = 3000,
        max_records: int = 500,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._deps = deps
        self._group_id = group_id
        self._metadata_max_age_ms = metadata_max_age_ms
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self.processed = 0

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=self._metadata_max_age_ms,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )
        self._consumer.subscribe(pattern=SUBMISSIONS_PATTERN)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            transactional_id=f"{self._group_id}-{socket.gethostname()}-{os.getpid()}",
            linger_ms=5,
        )
        await self._producer.start()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="ingress-gateway")
        log.info("ingress.started", pattern=SUBMISSIONS_PATTERN)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        log.info(
            "ingress.stopped",
            accepted=self._deps.counters.accepted,
            rejected=self._deps.counters.rejected,
        )

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(
                timeout_ms=1000, max_records=self._max_records
            )
            if not batches:
                continue
            try:
                await self._publish_batch(batches)
            except KafkaError as exc:
                log.error("ingress.batch_failed_will_retry", error=str(exc))
                await self._rewind(list(batches))
                await asyncio.sleep(1.0)

    async def _publish_batch(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self._producer is not None
        offsets: dict[TopicPartition, int] = {}
        async with self._producer.transaction():
            for tp, records in batches.items():
                for record in records:
                    for out in await self._handle(record):
                        await self._producer.send(
                            out.topic, out.value, key=out.key, headers=out.headers
                        )
                    offsets[tp] = record.offset + 1
            await self._producer.send_offsets_to_transaction(offsets, self._group_id)
        self.processed += sum(len(r) for r in batches.values())

    async def _handle(self, record: ConsumerRecord) -> list[Outbound]:  # type: ignore[type-arg]
        with structlog.contextvars.bound_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        ):
            try:
                return await handle_submission(record, self._deps)
            except Exception as exc:  # the handler is total; this guards the partition
                log.exception("ingress.handler_bug")
                return [dead_letter(record, code="handler_bug", message=repr(exc), stage=STAGE)]

    async def _rewind(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        committed = {tp: await self._consumer.committed(tp) for tp in partitions}
        for tp, offset in committed.items():
            if offset is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
