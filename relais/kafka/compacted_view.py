"""A compacted topic read whole into memory and followed: a global table.

``start`` returns once the view has read up to the end offsets found at start,
so everything written before the process started is visible; then the view
keeps following the topic in the background. Stages that write to the topic
call :meth:`CompactedView.put_local` to see their own writes at once, before the
record comes back from the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from relais.errors import DecodeError, InfrastructureError
from relais.kafka import clients
from relais.kafka.lifecycle import stop_loop
from relais.stages.local_writes import remember
from relais.wire.avro_codec import AvroCodec

log = structlog.get_logger(__name__)
T = TypeVar("T")


class CompactedView(Generic[T]):
    """Key → latest value of a compacted topic whose values are Avro ``schema_name``."""

    def __init__(
        self,
        bootstrap_servers: str,
        codec: AvroCodec,
        *,
        topic: str,
        schema_name: str,
        parse: Callable[[dict[str, Any]], T],
        on_change: Callable[[str, T | None], None] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._codec = codec
        self.topic = topic
        self._schema_name = schema_name
        self._parse = parse
        self._on_change = on_change
        self._values: dict[str, T] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def get(self, key: str) -> T | None:
        return self._values.get(key)

    def values(self) -> list[T]:
        return list(self._values.values())

    def __len__(self) -> int:
        return len(self._values)

    def put_local(self, key: str, value: T | None) -> None:
        """Make a value visible now (the caller has published it, or is about to).

        Inside a stage runner's handling the write is taken back if what it stands for is
        not committed (``relais.stages.local_writes``)."""
        previous = self._values.get(key)
        self._set(key, value)
        remember(lambda: self._take_back(key, value, previous))

    def _take_back(self, key: str, written: T | None, previous: T | None) -> None:
        if self._values.get(key) is not written:
            return  # replaced since (the broker's record, a later write): leave it
        self._set(key, previous)

    def _set(self, key: str, value: T | None) -> None:
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value
        if self._on_change is not None:
            self._on_change(key, value)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the topic (a tombstone removes the key)."""
        if key is None:
            return
        text_key = key.decode("utf-8", errors="replace")
        if value is None:
            self.put_local(text_key, None)
            return
        try:
            decoded = self._codec.decode(value, expected=self._schema_name)
        except DecodeError as exc:
            log.error("view.record_unreadable", topic=self.topic, key=text_key, error=str(exc))
            return
        self.put_local(text_key, self._parse(decoded.record))

    async def start(self, timeout: float = 120.0) -> None:
        consumer = clients.consumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        try:
            await consumer.start()
            partitions = await consumer._client._wait_on_metadata(self.topic)
            assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            # Before assigning: once assigned, the fetcher's long poll (500 ms) holds the
            # connection and the offsets request waits behind it.
            end_offsets = await consumer.end_offsets(assigned)
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
        except KafkaError as exc:
            await consumer.stop()
            raise InfrastructureError(
                f"cannot read {self.topic} from Kafka at {self._bootstrap}: {exc} (is it "
                "running? are RELAIS_KAFKA_SECURITY_PROTOCOL, the credentials and "
                "RELAIS_KAFKA_CA_FILE right? may this user read the topic?)"
            ) from exc
        self._consumer = consumer
        await asyncio.wait_for(self._catch_up(consumer, end_offsets), timeout)
        self.ready.set()
        log.info("view.ready", topic=self.topic, keys=len(self._values))
        self._task = asyncio.create_task(self._follow(consumer), name=f"view-{self.topic}")

    async def _catch_up(
        self, consumer: AIOKafkaConsumer, end_offsets: dict[TopicPartition, int]
    ) -> None:
        while True:
            positions = {tp: await consumer.position(tp) for tp in end_offsets}
            if all(positions[tp] >= end for tp, end in end_offsets.items()):
                return
            await self._read(consumer, 500)

    async def _read(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms)
        for records in batches.values():
            for record in records:
                self.apply(record.key, record.value)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._read(consumer, 1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup must not end the view; aiokafka reconnects
                log.exception("view.follow_error", topic=self.topic)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await stop_loop(self._task, self._consumer)
