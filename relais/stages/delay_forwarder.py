"""Forwards the records of one delay tier to their target once they are due.

A record is due at its timestamp plus the tier's delay. Due records go to the
topic named in their ``relais_delay_target`` header, in one transaction with the
tier's consumer offsets; a partition whose head is not due yet is rewound to its
first undue record and left alone until then. Nothing sleeps inside a
transaction, so a one-hour tier never holds one open.

A target must be one of ``targets``, the input topics of the declared stages (the hub
passes ``stage_inputs(FLOWS)``; the kernel knows no flow's topics); a
record without one, or naming another topic, is logged and skipped, so it
cannot hold the tier's partition. After any failure the partitions seek back to
their committed offsets; when that fails too, the consumer is replaced (a new
one starts at the committed offsets): nothing is committed past records that
were not forwarded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from relais.kafka import clients as kafka_clients
from relais.kafka.lifecycle import stop_loop
from relais.stages import headers as h
from relais.stages.delays import DelayTier
from relais.stages.instance import fresh_transactional_producer

log = structlog.get_logger(__name__)


class DelayForwarder:
    def __init__(
        self,
        bootstrap_servers: str,
        tier: DelayTier,
        *,
        group_id: str,
        targets: frozenset[str],
        consumer_factory: Callable[[], Any] | None = None,
        producer_factory: Callable[[Any], Awaitable[Any]] | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self.tier = tier
        self.group_id = group_id
        self._bootstrap = bootstrap_servers
        self._targets = targets
        self._consumer_factory = consumer_factory or self._kafka_consumer
        self._producer_factory = producer_factory or self._kafka_producer
        self._retry_delay = retry_delay
        self._consumer: Any = None
        self._producer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._not_before: dict[TopicPartition, float] = {}
        self.forwarded = 0
        self.skipped = 0
        self.consumer_restarts = 0
        #: Kafka transactions committed (one per batch of due records)
        self.transactions = 0

    async def start(self) -> None:
        await self._new_producer()
        self._consumer = self._consumer_factory()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"delay-{self.tier.label}")

    def _kafka_consumer(self) -> AIOKafkaConsumer:
        return kafka_clients.consumer(
            self.tier.topic.name,
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )

    async def _kafka_producer(self, previous: AIOKafkaProducer | None) -> AIOKafkaProducer:
        return await fresh_transactional_producer(self._bootstrap, self.group_id, previous)

    async def _new_producer(self) -> None:
        self._producer = await self._producer_factory(self._producer)

    async def stop(self) -> None:
        await stop_loop(self._task, self._consumer, self._producer)
        log.info("delay.stopped", tier=self.tier.label, forwarded=self.forwarded,
                 skipped=self.skipped, transactions=self.transactions)

    def _due_at(self, record: ConsumerRecord) -> float:  # type: ignore[type-arg]
        return float(record.timestamp) / 1000.0 + self.tier.seconds

    async def _run(self) -> None:
        while True:
            if self._consumer is None:
                await self._restart_consumer()
                continue
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # e.g. pause/seek on a partition a rebalance just took away: never let the
                # tier stop forwarding; start again from the committed offsets.
                log.exception("delay.step_failed", tier=self.tier.label)
                await self._recover()

    async def _recover(self) -> None:
        """A new producer, every assigned partition back at its committed offset and
        resumed; a new consumer when that fails."""
        self._not_before.clear()
        await asyncio.sleep(self._retry_delay)
        try:
            await self._new_producer()
        except KafkaError as exc:
            log.warning("delay.producer_restart_failed", tier=self.tier.label, error=str(exc))
        if not await self._rewind():
            await self._restart_consumer()

    async def _rewind(self) -> bool:
        consumer = self._consumer
        if consumer is None:
            return False
        try:
            assigned = list(consumer.assignment())
            if assigned:
                consumer.resume(*assigned)
            for tp in assigned:
                offset = await consumer.committed(tp)
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
        except Exception as exc:
            log.error("delay.rewind_failed", tier=self.tier.label, error=str(exc), exc_info=exc)
            return False
        return True

    async def _restart_consumer(self) -> None:
        self.consumer_restarts += 1
        old, self._consumer = self._consumer, None
        log.error("delay.consumer_restarting", tier=self.tier.label)
        if old is not None:
            try:
                await old.stop()
            except Exception as exc:
                log.warning("delay.consumer_stop_failed", tier=self.tier.label, error=str(exc))
        while self._consumer is None:
            try:
                consumer = self._consumer_factory()
                await consumer.start()
                self._consumer = consumer
            except Exception as exc:
                log.warning("delay.consumer_restart_failed", tier=self.tier.label,
                            error=str(exc))
                await asyncio.sleep(self._retry_delay)

    async def _step(self) -> None:
        assert self._consumer is not None
        now = time.time()
        assigned = self._consumer.assignment()
        for tp, not_before in list(self._not_before.items()):
            if tp not in assigned:
                del self._not_before[tp]  # revoked: its new owner starts from committed
            elif not_before <= now:
                self._consumer.resume(tp)
                del self._not_before[tp]
        try:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
        except KafkaError as exc:
            log.warning("delay.fetch_failed", tier=self.tier.label, error=str(exc))
            await asyncio.sleep(1.0)
            return
        if not batches:
            return
        due: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp, records in batches.items():
            count = 0
            for record in records:
                if self._due_at(record) > now:
                    break
                count += 1
            ready = records[:count]
            if len(ready) < len(records):
                first_undue = records[len(ready)]
                self._consumer.seek(tp, first_undue.offset)
                self._consumer.pause(tp)
                self._not_before[tp] = self._due_at(first_undue)
            if ready:
                due[tp] = ready
        if due:
            try:
                await self._forward(due)
            except KafkaError as exc:
                log.error("delay.forward_failed", tier=self.tier.label, error=str(exc))
                await self._recover()

    async def _forward(self, due: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self._producer is not None
        async with self._producer.transaction():
            for records in due.values():
                for record in records:
                    headers = list(record.headers or ())
                    target = h.get(headers, h.DELAY_TARGET)
                    if target not in self._targets:
                        self.skipped += 1
                        log.error("delay.bad_target", tier=self.tier.label, offset=record.offset,
                                  partition=record.partition, target=(target or "")[:200])
                        continue
                    await self._producer.send(
                        target, record.value, key=record.key,
                        headers=h.replace(headers, **{h.DELAY_TARGET: None}),
                    )
            offsets = {tp: records[-1].offset + 1 for tp, records in due.items()}
            await self._producer.send_offsets_to_transaction(offsets, self.group_id)
        self.forwarded += sum(len(r) for r in due.values())
        self.transactions += 1
