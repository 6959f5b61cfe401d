"""Fixtures for tests against the real broker: topics, members and a running hub worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.flows import FLOWS
from ops.members import Registration, new_member, register_members
from ops.processes import ManagedProcess
from ops.topics import apply_topics
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.kafka.security import hub_security
from relais.logs import READY_LINE
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import hub_topics


@dataclass
class RunningHub:
    settings: Settings
    worker: ManagedProcess
    env: dict[str, str]


def hub_env(settings: Settings) -> dict[str, str]:
    return {
        "RELAIS_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "RELAIS_DATA_DIR": str(settings.data_dir),
        "RELAIS_APP_ID": settings.app_id,
        "RELAIS_LOG_FORMAT": "json",
        "RELAIS_LOG_LEVEL": "INFO",
        **hub_security(settings).as_env(),
    }


async def register(settings: Settings, registrations: list[Registration]) -> None:
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    try:
        async with admin_client(settings.bootstrap_servers) as admin:
            await register_members(admin, publisher, registrations)
    finally:
        await publisher.stop()


async def apply_hub_topics(settings: Settings) -> None:
    async with admin_client(settings.bootstrap_servers) as admin:
        await apply_topics(admin, list(hub_topics(settings.app_id, FLOWS)))


def members_for(sirens_names: list[tuple[str, str, str]]) -> list[Registration]:
    return [new_member(s, n, d) for s, n, d in sirens_names]


@pytest.fixture(scope="module")
def hub(
    hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """A hub worker subprocess on the test broker, with its own app id and data dir."""
    data_dir: Path = tmp_path_factory.mktemp("hub")
    settings = Settings.from_env(
        kafka_bootstrap=hub_kafka_bootstrap,
        data_dir=data_dir,
        app_id=f"relais-test-{uuid.uuid4().hex[:8]}",
    )
    asyncio.run(apply_hub_topics(settings))
    env = hub_env(settings)
    worker = ManagedProcess("worker", ["worker"], env, data_dir / "worker.log")
    worker.start()
    try:
        worker.wait_for(READY_LINE, timeout=120)
        yield RunningHub(settings, worker, env)
    finally:
        worker.stop()
