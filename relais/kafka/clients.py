"""The one place Kafka clients are built, with the cluster's security applied.

Use :func:`producer`, :func:`consumer` and :func:`admin` instead of
constructing ``AIOKafkaProducer``/``AIOKafkaConsumer``/``AIOKafkaAdminClient``
directly, and :func:`faust_credentials` for the faust app: each applies the
``KafkaSecurity`` of its bootstrap servers (``relais.kafka.security``), or the
one given.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from relais.kafka.security import KafkaSecurity, security_for
from relais.wire.partitioner import Murmur2Partitioner


def _options(bootstrap_servers: str, security: KafkaSecurity | None) -> dict[str, Any]:
    chosen = security if security is not None else security_for(bootstrap_servers)
    return {"bootstrap_servers": bootstrap_servers, **chosen.client_options()}


#: Bytes one producer batch (one partition's share of a produce request) may hold, unless
#: the caller says otherwise. aiokafka's default, 16 KiB, holds a few dozen records: a
#: stage's transaction of 500 inputs fills dozens of batches per partition, and each
#: ``send`` past a full batch waits for that batch to reach the broker, one round trip
#: after the other (the ladder's commit time halved with 256 KiB, see
#: ``benchmarks/ladder.py``). Kept under aiokafka's default ``max_request_size`` (1 MiB).
DEFAULT_MAX_BATCH_BYTES = 256 * 1024


def producer(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None, **options: Any
) -> AIOKafkaProducer:
    """An ``AIOKafkaProducer`` (not started); ``options`` are aiokafka's
    (``max_batch_size`` defaults to :data:`DEFAULT_MAX_BATCH_BYTES`, ``partitioner`` to
    :class:`~relais.wire.partitioner.Murmur2Partitioner`: aiokafka's placement, faster)."""
    options.setdefault("max_batch_size", DEFAULT_MAX_BATCH_BYTES)
    options.setdefault("partitioner", Murmur2Partitioner())
    return AIOKafkaProducer(**_options(bootstrap_servers, security), **options)


def consumer(
    *topics: str,
    bootstrap_servers: str,
    security: KafkaSecurity | None = None,
    **options: Any,
) -> AIOKafkaConsumer:
    """An ``AIOKafkaConsumer`` (not started), subscribed to ``topics`` if any."""
    return AIOKafkaConsumer(*topics, **_options(bootstrap_servers, security), **options)


def admin(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None, **options: Any
) -> AIOKafkaAdminClient:
    """An ``AIOKafkaAdminClient`` (not started)."""
    return AIOKafkaAdminClient(**_options(bootstrap_servers, security), **options)


def faust_credentials(bootstrap_servers: str) -> Any:
    """faust's ``broker_credentials`` for ``bootstrap_servers`` (None: no authentication)."""
    import faust

    security = security_for(bootstrap_servers)
    if security.sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            mechanism=security.mechanism,
            ssl_context=security.ssl_context(),
        )
    if security.tls:
        return faust.SSLCredentials(security.ssl_context())
    return None
