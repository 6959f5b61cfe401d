"""An admin client as an async context manager, with errors in the project's tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from relais.errors import InfrastructureError
from relais.kafka import clients
from relais.kafka.security import KafkaSecurity


@asynccontextmanager
async def admin_client(
    bootstrap_servers: str, *, security: KafkaSecurity | None = None
) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = clients.admin(bootstrap_servers, security=security, request_timeout_ms=30000)
    try:
        await admin.start()
    except (KafkaConnectionError, KafkaError) as exc:
        raise InfrastructureError(
            f"cannot reach Kafka at {bootstrap_servers} ({exc}); is it running (`relais kafka "
            "up`)? Are RELAIS_KAFKA_SECURITY_PROTOCOL, the credentials and RELAIS_KAFKA_CA_FILE "
            "right?"
        ) from exc
    try:
        yield admin
    finally:
        await admin.close()
