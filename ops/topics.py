"""Create, update and check topics against the catalogue (``relais topics apply|check``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from relais.errors import InfrastructureError
from topics.spec import TopicSpec

log = structlog.get_logger(__name__)
_BATCH = 200


@dataclass(frozen=True)
class Drift:
    """One difference between a declared topic and the cluster."""

    topic: str
    what: str
    declared: str
    actual: str


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    drift_left: list[Drift] = field(default_factory=list)


def _chunks(items: Sequence[TopicSpec], size: int) -> Iterable[Sequence[TopicSpec]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for start in range(0, len(names), _BATCH):
        for entry in await admin.describe_topics(names[start : start + _BATCH]):
            if entry.get("error_code", 0) == 0:
                counts[entry["topic"]] = len(entry["partitions"])
    return counts


async def _configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    configs: dict[str, dict[str, str]] = {}
    for start in range(0, len(names), _BATCH):
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name) for name in names[start : start + _BATCH]
        ]
        for response in await admin.describe_configs(resources):
            for resource in response.resources:
                _error, _msg, _type, name, entries = resource[:5]
                configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


async def wait_until_listed(
    admin: AIOKafkaAdminClient, names: Sequence[str], deadline_s: float = 180.0
) -> float:
    """Wait until the broker lists every topic in ``names``; seconds waited.

    Kafka accepts a batch of CreateTopics at once but makes the topics visible
    progressively (seconds for thousands); callers that publish to them, or
    announce them, wait here first.
    """
    started = time.monotonic()
    missing = set(names)
    while missing:
        missing -= set(await admin.list_topics())
        if not missing:
            break
        if time.monotonic() - started > deadline_s:
            raise InfrastructureError(
                f"{len(missing)} created topics are still not listed after {deadline_s:.0f} s"
            )
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def check_topics(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> list[Drift]:
    """Every difference between ``specs`` and the cluster; empty when in line."""
    existing = set(await admin.list_topics())
    drift = [Drift(s.name, "missing", "present", "absent") for s in specs if s.name not in existing]
    present = [s for s in specs if s.name in existing]
    counts = await _partition_counts(admin, [s.name for s in present])
    configs = await _configs(admin, [s.name for s in present])
    for spec in present:
        actual_partitions = counts.get(spec.name, 0)
        if actual_partitions != spec.partitions:
            drift.append(
                Drift(spec.name, "partitions", str(spec.partitions), str(actual_partitions))
            )
        actual = configs.get(spec.name, {})
        for key, value in spec.configs().items():
            if actual.get(key) != value:
                drift.append(Drift(spec.name, key, value, str(actual.get(key))))
    return drift


async def apply_topics(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> ApplyReport:
    """Create missing topics and bring configs and partition counts in line; idempotent.

    Partitions are only ever added (Kafka cannot remove them): a topic with more
    partitions than declared is reported in ``drift_left``.
    """
    report = ApplyReport()
    existing = set(await admin.list_topics())
    missing = [s for s in specs if s.name not in existing]
    for batch in _chunks(missing, _BATCH):
        new = [
            NewTopic(s.name, s.partitions, s.replication, topic_configs=s.configs()) for s in batch
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            log.info("topics.create.raced", topics=[s.name for s in batch])
        report.created.extend(s.name for s in batch)
    for item in await check_topics(admin, [s for s in specs if s.name in existing]):
        spec = next(s for s in specs if s.name == item.topic)
        if item.what == "partitions":
            if int(item.actual) < spec.partitions:
                await admin.create_partitions({spec.name: NewPartitions(spec.partitions)})
                report.updated.append(spec.name)
            else:
                report.drift_left.append(item)
        else:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.configs())]
            )
            report.updated.append(spec.name)
    if report.created:
        await wait_until_listed(admin, report.created)
    touched = set(report.created) | set(report.updated)
    report.updated = sorted(set(report.updated))
    report.unchanged = [s.name for s in specs if s.name not in touched]
    return report
