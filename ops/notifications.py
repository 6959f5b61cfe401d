"""Reading a member's notifications, as its back-office would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from relais.errors import DecodeError
from relais.kafka import clients as kafka_clients
from relais.kafka.security import KafkaSecurity
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics


class NotificationWatcher:
    """Follows one member's notifications topic from the offset it had at ``start``.

    Reads with isolation ``read_committed``: notifications published in an
    aborted hub transaction are never seen.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        siren: str,
        codec: AvroCodec | None = None,
        *,
        security: KafkaSecurity | None = None,
    ) -> None:
        self._codec = codec or AvroCodec()
        self._tp = TopicPartition(member_topics.notifications(siren).name, 0)
        self._consumer = kafka_clients.consumer(
            bootstrap_servers=bootstrap_servers,
            security=security,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        self.received: list[dict[str, Any]] = []

    async def start(self, from_beginning: bool = False) -> None:
        await self._consumer.start()
        self._consumer.assign([self._tp])
        if from_beginning:
            await self._consumer.seek_to_beginning(self._tp)
        else:
            await self._consumer.seek_to_end(self._tp)
            await self._consumer.position(self._tp)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout: float = 0.5) -> list[dict[str, Any]]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        new = []
        for records in batches.values():
            for record in records:
                try:
                    new.append(self._codec.decode(record.value, expected="Notification").record)
                except DecodeError:
                    continue
        self.received.extend(new)
        return new

    async def wait_until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float
    ) -> list[dict[str, Any]]:
        """Poll until ``done(received)`` is true or ``timeout`` seconds pass; returns all."""
        deadline = time.monotonic() + timeout
        while not done(self.received) and time.monotonic() < deadline:
            await self.poll(min(0.5, max(0.05, deadline - time.monotonic())))
            await asyncio.sleep(0)
        return self.received
