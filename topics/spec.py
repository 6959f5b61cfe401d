"""What a topic declaration holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic: its name and everything needed to create and check it.

    ``key`` and ``value_schema`` document the contract: the value schema is the
    name of an Avro schema in ``schemas/`` (``"raw"`` for records kept byte for
    byte, such as dead letters).
    """

    name: str
    partitions: int
    key: str
    value_schema: str
    doc: str
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = 7 * DAY_MS
    max_message_bytes: int = 1024 * 1024
    replication: int = 1

    def configs(self) -> dict[str, str]:
        """The topic-level configs Relais manages (``relais topics check`` compares them)."""
        configs = {
            "cleanup.policy": self.cleanup_policy,
            "max.message.bytes": str(self.max_message_bytes),
        }
        if self.cleanup_policy == "delete":
            configs["retention.ms"] = str(self.retention_ms)
        return configs
