"""What a stage consumes: the fields of a Kafka record it relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from relais.stages.headers import strip_internal


class InputRecord(Protocol):
    """Read-only: a consumed record, or one a stage rebuilt."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class FakeRecord:
    """An in-memory record: unit tests, replays, and a consumed record a stage rebuilt
    (see :func:`without_internal_headers`)."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0
    timestamp: int = 0
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


def without_internal_headers(record: InputRecord) -> InputRecord:
    """``record`` with every ``relais_*`` header dropped (see
    :func:`relais.stages.headers.strip_internal`): the ingress reads members' records so."""
    return FakeRecord(
        topic=record.topic, value=record.value, key=record.key, partition=record.partition,
        offset=record.offset, timestamp=record.timestamp,
        headers=tuple(strip_internal(record.headers)),
    )
