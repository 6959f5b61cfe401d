"""A throwaway hub for a benchmark: its settings and processes, its topics and members,
and the sandbox TdT acknowledging at once (``benchmarks.ladder`` and
``benchmarks.large_document`` both start theirs here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from benchmarks import BenchmarkError, wait_topics_ready
from benchmarks.output_shape import mirror_topic
from hub.flows import FLOWS
from ops.kafka.broker import LocalBroker
from ops.members import Registration, register_members
from ops.stack import Stack, free_port, sandbox_base_port, sandbox_config
from ops.topics import apply_topics
from relais.errors import InfrastructureError
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from topics import member as member_topics
from topics.catalogue import hub_topics
from topics.delays import TIERS
from topics.spec import TopicSpec

#: The shortest delay tier: the only poll tier of a benchmark's hub.
POLL_TIER = TIERS[0].label

#: The sandbox TdT's schedule: transmitted and acknowledged at once, no préfecture
#: message within a run.
AT_ONCE = {"transmit_after": 0.0, "acknowledge_after": 0.0,
           "prefecture_message_after": 86400.0}


def bench_hub(broker: LocalBroker, work: Path, app_id: str,
              log_level: str = "INFO") -> tuple[Settings, Stack]:
    """The settings of a hub on ``broker`` (data and logs under ``work``) and its process
    set: poll tiers shortened to :data:`POLL_TIER`, the préfecture messages' poll out of
    the way."""
    settings = Settings.from_env(
        kafka_bootstrap=broker.bootstrap, data_dir=work / "hub", app_id=app_id,
        sandbox_tdt_port=sandbox_base_port(), api_port=free_port(),
    )
    stack = Stack(settings, work / "logs", extra_env={
        "RELAIS_POLL_TIERS": POLL_TIER,
        "RELAIS_PREFECTURE_POLL_SECONDS": "3600",
        "RELAIS_LOG_LEVEL": log_level,
    })
    return settings, stack


def with_partitions(specs: Sequence[TopicSpec], partitions: int) -> list[TopicSpec]:
    """The catalogue with every multi-partition topic given ``partitions``."""
    return [dataclasses.replace(s, partitions=partitions) if s.partitions > 1 else s
            for s in specs]


def hub_specs(app_id: str, partitions: int | None = None) -> list[TopicSpec]:
    """The hub's topics, every multi-partition one given ``partitions`` when set."""
    specs = list(hub_topics(app_id, FLOWS))
    return with_partitions(specs, partitions) if partitions is not None else specs


async def provision(bootstrap: str, codec: AvroCodec, app_id: str,
                    registrations: Sequence[Registration], *, client_id: str,
                    partitions: int | None = None) -> None:
    """The hub's topics (every multi-partition one given ``partitions`` when set) and
    ``registrations`` registered, then every hub and member topic ready."""
    publisher = Publisher(bootstrap, codec, client_id=client_id)
    await publisher.start()
    try:
        async with admin_client(bootstrap) as admin:
            specs = hub_specs(app_id, partitions)
            await apply_topics(admin, specs)
            await register_members(admin, publisher, list(registrations))
            await wait_topics_ready(admin, [
                *(s.name for s in specs),
                *(t.name for r in registrations
                  for t in member_topics.member_topics(r.member.siren)),
            ], 60)
    except InfrastructureError as exc:
        raise BenchmarkError(str(exc)) from exc
    finally:
        await publisher.stop()


async def create_mirrors(bootstrap: str, app_id: str, partitions: dict[str, int]) -> None:
    """Topics standing in for the topics ``partitions`` names (``mirror_topic``), each
    with that many partitions, and the hub topic's configs when it is one."""
    known = {s.name: s for s in hub_specs(app_id)}
    specs = [dataclasses.replace(known[name], name=mirror_topic(name), partitions=count)
             if name in known else
             TopicSpec(mirror_topic(name), count, key="flow id", value_schema="Notification",
                       doc=f"the benchmark ladder's L1b, in place of {name}")
             for name, count in partitions.items()]
    try:
        async with admin_client(bootstrap) as admin:
            await apply_topics(admin, specs)
            await wait_topics_ready(admin, [s.name for s in specs], 60)
    except InfrastructureError as exc:
        raise BenchmarkError(str(exc)) from exc


def start_sandbox_tdt(hub: Stack, registrations: Sequence[Registration]) -> None:
    """The sandbox TdT for ``registrations`` (mTLS), answering :data:`AT_ONCE`."""
    try:
        hub.start_sandbox(sandbox_config(list(registrations), schedule=dict(AT_ONCE)))
    except InfrastructureError as exc:
        raise BenchmarkError(str(exc)) from exc
