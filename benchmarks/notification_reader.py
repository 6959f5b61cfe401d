"""Reading members' notifications while a benchmark runs: from the end of their topics
(read_committed), each decoded notification handed to ``observe`` with the record and the
moment it was read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition

from relais.errors import DecodeError
from relais.kafka import clients as kafka_clients
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics


class NotificationReader:
    """The notifications of ``sirens`` written from :meth:`start` on; subclasses keep what
    they need in :meth:`observe`. Records that are not notifications are skipped."""

    def __init__(self, bootstrap: str, sirens: Sequence[str], codec: AvroCodec) -> None:
        self._codec = codec
        self._tps = [TopicPartition(member_topics.notifications(s).name, 0) for s in sirens]
        self._consumer = kafka_clients.consumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False,
            isolation_level="read_committed", max_partition_fetch_bytes=4 * 1024 * 1024)
        self._task: asyncio.Task[None] | None = None

    def observe(self, note: dict[str, Any], record: Any, now: float) -> None:
        """One notification (``record`` its Kafka record), read at monotonic ``now``."""

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_end(*self._tps)
        for tp in self._tps:
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="notification-reader")

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=10000)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    try:
                        note = self._codec.decode(record.value or b"",
                                                  expected="Notification").record
                    except DecodeError:
                        continue
                    self.observe(note, record, now)

    def check_running(self) -> None:
        """Raise what stopped the reading task, if it stopped."""
        if self._task is not None and self._task.done():
            self._task.result()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
