"""The real Kafka broker answers and behaves as Relais relies on.

Runs against the session broker (``kafka_bootstrap``); the lifecycle tests at
the end start their own ``LocalBroker`` on other ports.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from ops.kafka.broker import KAFKA_VERSION, LocalBroker
from relais.errors import InfrastructureError
from relais.kafka import clients as kafka_clients
from relais.kafka.security import KafkaSecurity
from tests.conftest import free_port_pair, local_broker_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = kafka_clients.admin(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def topic(admin: AIOKafkaAdminClient) -> str:
    """A fresh single-partition topic."""
    name = f"test-broker-{uuid.uuid4().hex[:12]}"
    await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    return name


async def read_all(
    bootstrap: str, topic: str, isolation_level: str, wait_seconds: float = 20.0
) -> list[bytes]:
    """Every value readable in ``topic`` under ``isolation_level``, up to its end offset."""
    consumer = kafka_clients.consumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        async with asyncio.timeout(wait_seconds):
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=500)
                values.extend(
                    record.value for record in batches.get(tp, []) if record.value is not None
                )
        return values
    finally:
        await consumer.stop()


async def test_broker_answers_metadata(admin: AIOKafkaAdminClient) -> None:
    cluster = await admin.describe_cluster()

    assert [broker["node_id"] for broker in cluster["brokers"]] == [1]
    assert cluster["cluster_id"]
    assert cluster["controller_id"] == 1


async def test_auto_topic_creation_is_disabled(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    unknown = f"never-declared-{uuid.uuid4().hex[:12]}"
    # aiokafka's metadata requests ask for auto-creation: a broker allowing it would
    # create the topic here and the send would succeed.
    producer = kafka_clients.producer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=3_000)
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait(unknown, b"lost")
    finally:
        await producer.stop()

    assert unknown not in await admin.list_topics()


async def test_idempotent_producer_writes_each_record_once_in_order(
    kafka_bootstrap: str, topic: str
) -> None:
    producer = kafka_clients.producer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sent = [f"event-{i}".encode() for i in range(50)]
        futures = [await producer.send(topic, value, key=b"same-key") for value in sent]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()

    assert [m.offset for m in metadata] == list(range(50))
    assert await read_all(kafka_bootstrap, topic, "read_committed") == sent


async def test_read_committed_consumer_skips_aborted_transactions(
    kafka_bootstrap: str, topic: str
) -> None:
    producer = kafka_clients.producer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"test-broker-{uuid.uuid4().hex[:12]}",
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-2")
    finally:
        await producer.stop()

    # The aborted record is in the log: an uncommitted reader sees it...
    assert await read_all(kafka_bootstrap, topic, "read_uncommitted") == [
        b"committed-1",
        b"aborted",
        b"committed-2",
    ]
    # ...a read_committed reader does not.
    assert await read_all(kafka_bootstrap, topic, "read_committed") == [
        b"committed-1",
        b"committed-2",
    ]


async def test_read_committed_consumer_waits_for_an_open_transaction(
    kafka_bootstrap: str, topic: str
) -> None:
    producer = kafka_clients.producer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"test-broker-{uuid.uuid4().hex[:12]}",
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"pending")
        assert await read_all(kafka_bootstrap, topic, "read_committed") == []
        await producer.commit_transaction()
    finally:
        await producer.stop()

    assert await read_all(kafka_bootstrap, topic, "read_committed") == [b"pending"]


def test_local_broker_lifecycle(tmp_path: Path) -> None:
    port, controller_port = free_port_pair()
    broker = LocalBroker(local_broker_settings(tmp_path, port, controller_port))
    try:
        seconds = broker.start()
        status = broker.status()
        assert seconds > 0
        assert status.running
        assert status.pid is not None
        assert status.bootstrap == f"127.0.0.1:{port}"
        assert status.version == KAFKA_VERSION
        assert broker.pid_path.read_text().strip() == str(status.pid)
        assert (broker.log_dirs / "meta.properties").is_file()
        assert "Kafka Server started" in broker.log_path.read_text()
        # Secured by default: its passwords and properties readable by their owner only.
        assert broker.auth
        assert broker.credentials_path.stat().st_mode & 0o777 == 0o600
        assert broker.properties_path.stat().st_mode & 0o777 == 0o600

        again = time.monotonic()
        assert broker.start() == 0.0
        assert time.monotonic() - again < 5
        assert broker.status().pid == status.pid

        assert broker.stop() is True
        assert not broker.status().running
        assert not broker.pid_path.exists()
        assert not Path(f"/proc/{status.pid}").exists()
        assert broker.stop() is False

        broker.wipe()
        assert not broker.log_dirs.exists()
        assert not broker.log_path.exists()
        assert not broker.credentials_path.exists()
    finally:
        broker.stop()


def test_broker_dying_at_startup_reports_its_log(tmp_path: Path) -> None:
    settings = replace(local_broker_settings(tmp_path, *free_port_pair()), kafka_auth="off")
    broker = LocalBroker(settings)
    # Storage formatted for another node: Kafka refuses to start and says why in its log.
    broker.log_dirs.mkdir(parents=True)
    (broker.log_dirs / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n"
        "directory.id=BBBBBBBBBBBBBBBBBBBBBB\n"
    )
    try:
        with pytest.raises(InfrastructureError) as raised:
            broker.start(timeout=60)
        assert "died during startup" in str(raised.value)
        assert "Stored node id 7 doesn't match previous node id 1" in str(raised.value)
        assert not broker.status().running
        assert not broker.pid_path.exists()
    finally:
        broker.stop()


async def test_a_data_dir_formatted_without_authentication_is_secured_at_its_next_start(
    tmp_path: Path,
) -> None:
    settings = local_broker_settings(tmp_path, *free_port_pair())
    open_broker = LocalBroker(replace(settings, kafka_auth="off"))
    try:
        open_broker.start()
        admin = kafka_clients.admin(open_broker.bootstrap, security=KafkaSecurity())
        await admin.start()
        try:
            await admin.create_topics([NewTopic("relais.kept", 1, 1)])
        finally:
            await admin.close()
    finally:
        open_broker.stop()
    assert not open_broker.credentials_path.exists()

    broker = LocalBroker(settings)
    try:
        broker.start()
        assert broker.credentials_path.stat().st_mode & 0o777 == 0o600
        for user in ("relais-admin", "relais-hub"):
            admin = kafka_clients.admin(broker.bootstrap, security=broker.security(user))
            await admin.start()
            try:
                assert "relais.kept" in await admin.list_topics()
            finally:
                await admin.close()
        anonymous = kafka_clients.admin(broker.bootstrap, security=KafkaSecurity(),
                                        request_timeout_ms=5_000)
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(anonymous.start(), 30)
        await anonymous.close()
    finally:
        broker.stop()
