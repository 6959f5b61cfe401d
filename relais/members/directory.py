"""The member directory: the compacted registry topic, read whole and followed.

Every hub process holds one. ``start`` returns once the directory has read the
topic up to the end offsets it found at start (so a member registered before the
process started is known), then it keeps following: a member added later is
live within about a second, without a restart. This is a global table: each
process reads every partition, no consumer group is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from relais.api.auth import hash_token
from relais.errors import DecodeError
from relais.members.model import Member
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import MEMBERS

log = structlog.get_logger(__name__)


class MemberDirectory:
    """An in-memory view of every member, kept up to date from the registry topic."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        self._bootstrap = bootstrap_servers
        self._codec = codec
        self._members: dict[str, Member] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def get(self, siren: str) -> Member | None:
        """The member with this SIREN, or None (also for a deactivated member)."""
        member = self._members.get(siren)
        return member if member is not None and member.active else None

    def all(self) -> list[Member]:
        return sorted(self._members.values(), key=lambda m: m.siren)

    def __len__(self) -> int:
        return len(self._members)

    async def authenticate(self, token: str) -> str | None:
        """The SIREN of the active member whose token this is, or None."""
        digest = hash_token(token)
        for member in self._members.values():
            if member.active and hmac.compare_digest(member.token_sha256, digest):
                return member.siren
        return None

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one registry record (a tombstone removes the member)."""
        if key is None:
            return
        siren = key.decode("utf-8", errors="replace")
        if value is None:
            self._members.pop(siren, None)
            return
        try:
            decoded = self._codec.decode(value, expected="Member")
        except DecodeError as exc:
            log.error("members.record_unreadable", siren=siren, error=str(exc))
            return
        self._members[siren] = Member.from_record(decoded.record)

    async def start(self, timeout: float = 60.0) -> None:
        """Read the registry up to its current end, then follow it in the background."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        self._consumer = consumer
        partitions = consumer.partitions_for_topic(MEMBERS.name) or {0}
        assigned = [TopicPartition(MEMBERS.name, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        end_offsets = await consumer.end_offsets(assigned)
        await asyncio.wait_for(self._catch_up(consumer, end_offsets), timeout)
        self.ready.set()
        log.info("members.directory_ready", members=len(self._members))
        self._task = asyncio.create_task(self._follow(consumer), name="member-directory")

    async def _catch_up(
        self, consumer: AIOKafkaConsumer, end_offsets: dict[TopicPartition, int]
    ) -> None:
        while True:
            positions = {tp: await consumer.position(tp) for tp in end_offsets}
            if all(positions[tp] >= end for tp, end in end_offsets.items()):
                return
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self.apply(record.key, record.value)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    self.apply(record.key, record.value)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
