"""Forwards the records of one delay tier to their target once they are due.

A record is due at its timestamp plus the tier's delay. Due records go to the
topic named in their ``relais_delay_target`` header, in one transaction with the
tier's consumer offsets; a partition whose head is not due yet is rewound to its
first undue record and left alone until then. Nothing sleeps inside a
transaction, so a one-hour tier never holds one open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

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
    def __init__(self, bootstrap_servers: str, tier: DelayTier, *, group_id: str) -> None:
        self.tier = tier
        self.group_id = group_id
        self._bootstrap = bootstrap_servers
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._not_before: dict[TopicPartition, float] = {}
        self.forwarded = 0

    async def start(self) -> None:
        self._consumer = kafka_clients.consumer(
            self.tier.topic.name,
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )
        await self._new_producer()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"delay-{self.tier.label}")

    async def _new_producer(self) -> None:
        self._producer = await fresh_transactional_producer(
            self._bootstrap, self.group_id, self._producer
        )

    async def stop(self) -> None:
        await stop_loop(self._task, self._consumer, self._producer)

    def _due_at(self, record: ConsumerRecord) -> float:  # type: ignore[type-arg]
        return float(record.timestamp) / 1000.0 + self.tier.seconds

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # e.g. pause/seek on a partition a rebalance just took away: never let the
                # tier stop forwarding; the next step starts again from committed offsets.
                log.exception("delay.step_failed", tier=self.tier.label)
                self._not_before.clear()
                await asyncio.sleep(1.0)

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
                await asyncio.sleep(1.0)
                with contextlib.suppress(KafkaError):
                    await self._new_producer()
                for tp in due:
                    with contextlib.suppress(KafkaError):
                        offset = await self._consumer.committed(tp)
                        if offset is not None:
                            self._consumer.seek(tp, offset)

    async def _forward(self, due: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self._producer is not None
        async with self._producer.transaction():
            for records in due.values():
                for record in records:
                    headers = list(record.headers or ())
                    target = h.get(headers, h.DELAY_TARGET)
                    if not target:
                        log.error("delay.no_target", tier=self.tier.label, offset=record.offset)
                        continue
                    await self._producer.send(
                        target, record.value, key=record.key,
                        headers=h.replace(headers, **{h.DELAY_TARGET: None}),
                    )
            offsets = {tp: records[-1].offset + 1 for tp, records in due.items()}
            await self._producer.send_offsets_to_transaction(offsets, self.group_id)
        self.forwarded += sum(len(r) for r in due.values())
