"""Which worker instance this process is, for its transactional ids.

A stage's transactional id is ``<consumer group>-<worker id>``: stable across
restarts of the same worker, so a restarted worker fences its crashed
predecessor and the broker aborts the transaction the crash left open at once
(instead of when it times out, which stalls read_committed readers of every
partition it wrote to). Two workers running at the same time must have
different ids: ``RELAIS_WORKER_ID`` (default: the host name).
"""

from __future__ import annotations

import contextlib
import os
import socket

from aiokafka import AIOKafkaProducer

from relais.kafka import clients as kafka_clients


def worker_id() -> str:
    return os.environ.get("RELAIS_WORKER_ID") or socket.gethostname()


def transactional_id(group_id: str) -> str:
    return f"{group_id}-{worker_id()}"


#: A transaction here only wraps the sends of a batch already handled, so it lasts well
#: under a second. A restarted worker fences the transaction its crashed predecessor left
#: open (same transactional id); this timeout is the backstop for a worker that does not
#: come back: until it expires, read_committed readers of every partition the open
#: transaction wrote to are held at its first offset. Keep it short.
TRANSACTION_TIMEOUT_MS = 15_000


async def fresh_transactional_producer(
    bootstrap_servers: str, group_id: str, previous: AIOKafkaProducer | None
) -> AIOKafkaProducer:
    """A started transactional producer for ``group_id``, replacing ``previous``.

    After a broker outage a producer may be left in an error state no further
    transaction clears; a new one with the same id fences it and starts clean.
    """
    if previous is not None:
        with contextlib.suppress(Exception):
            await previous.stop()
    producer = kafka_clients.producer(
        bootstrap_servers=bootstrap_servers,
        transactional_id=transactional_id(group_id),
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    return producer
