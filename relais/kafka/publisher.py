"""Publishing Avro records with CloudEvents headers."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from relais.errors import InfrastructureError
from relais.kafka import clients
from relais.kafka.security import KafkaSecurity
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders


def dataschema_uri(codec: AvroCodec, schema_name: str) -> str:
    """The ``ce_dataschema`` value of records written with the current ``schema_name``."""
    schema = codec.catalog.current(schema_name)
    return f"urn:relais:schema:{schema.full_name}:v{schema.version}"


class Publisher:
    """An idempotent producer that encodes values with the project's Avro codec.

    ``publish`` returns once the broker has acknowledged the record (acks=all):
    the record is then durable and will be delivered to consumers. Cancelling the
    await does not recall a record already handed to the producer.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        codec: AvroCodec,
        *,
        client_id: str,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.codec = codec
        self._security = security
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._started: AIOKafkaProducer | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise InfrastructureError("the publisher is not started")
        return self._started

    async def start(self) -> None:
        """Connect; the producer is built here, inside the running event loop."""
        self._started = clients.producer(
            self._bootstrap,
            security=self._security,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
        )
        try:
            await self._started.start()
        except KafkaError as exc:
            raise InfrastructureError(f"cannot reach Kafka: {exc}") from exc

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    async def publish(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        schema_name: str,
        record: dict[str, Any],
        headers: EventHeaders,
    ) -> None:
        value = self.codec.encode(schema_name, record)
        await self.publish_raw(topic, key=key, value=value, headers=headers)

    async def publish_many(
        self,
        topic: str,
        items: list[tuple[str, dict[str, Any], EventHeaders]],
        *,
        schema_name: str,
    ) -> None:
        """Publish ``(key, record, headers)`` items without a round trip each; returns once
        the broker acknowledged them all."""
        futures = []
        try:
            for key, record, headers in items:
                value = self.codec.encode(schema_name, record)
                futures.append(
                    await self._producer.send(
                        topic, value, key=key.encode("utf-8"), headers=headers.to_kafka()
                    )
                )
            for future in futures:
                await future
        except KafkaError as exc:
            raise InfrastructureError(f"cannot publish to {topic}: {exc}") from exc

    async def publish_raw(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        headers: EventHeaders | list[tuple[str, bytes]],
    ) -> None:
        raw_key = key.encode("utf-8") if isinstance(key, str) else key
        raw_headers = headers.to_kafka() if isinstance(headers, EventHeaders) else headers
        try:
            await self._producer.send_and_wait(topic, value, key=raw_key, headers=raw_headers)
        except KafkaError as exc:
            raise InfrastructureError(f"cannot publish to {topic}: {exc}") from exc
