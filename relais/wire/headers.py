"""Record headers: the CloudEvents Kafka protocol binding (binary mode) plus Relais' own.

Every record the hub writes carries ``ce_specversion``, ``ce_id``, ``ce_source``,
``ce_type``, ``ce_time``, ``ce_subject``, ``content-type`` and ``ce_dataschema``,
the flow id in ``relais_flow_id`` and a W3C ``traceparent``. Reading is lenient:
members may omit headers, and a missing header is ``None``.
"""

from __future__ import annotations

import functools
import random
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

AVRO_CONTENT_TYPE = "application/avro"
FLOW_ID_HEADER = "relais_flow_id"

_CE_FIELDS = {
    "ce_id": "id",
    "ce_source": "source",
    "ce_type": "type",
    "ce_time": "time",
    "ce_subject": "subject",
    "ce_dataschema": "dataschema",
    "content-type": "content_type",
    FLOW_ID_HEADER: "flow_id",
    "traceparent": "traceparent",
}
# version (ff is invalid), trace id and parent id (lowercase hex, not all zeros), flags
_TRACEPARENT = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
)
_random_bits = random.getrandbits


#: (epoch milliseconds, its ``ce_time`` text): the last one formatted. Many records are
#: written in the same millisecond; formatting a datetime cost 10 times the look-up.
_last_time: tuple[int, str] = (-1, "")


def now_text() -> str:
    """The current UTC time as ``ce_time`` writes it: RFC 3339 with milliseconds and ``Z``
    (truncated, not rounded)."""
    global _last_time
    millis = time.time_ns() // 1_000_000
    last = _last_time
    if last[0] == millis:
        return last[1]
    moment = datetime.fromtimestamp(millis // 1000, UTC).replace(microsecond=millis % 1000 * 1000)
    text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    _last_time = (millis, text)
    return text


_now_text = now_text


def _span_id() -> str:
    """A random, non-zero 8-byte span id in hex. ``random`` (as OpenTelemetry's id
    generator), not ``os.urandom``: an id is not a secret, and a system call per record
    cost more than the rest of the traceparent."""
    while True:
        bits = _random_bits(64)
        if bits:
            return f"{bits:016x}"


def new_traceparent() -> str:
    """A fresh W3C trace context: version 00, random trace and span ids, sampled."""
    while True:
        trace = _random_bits(128)
        if trace:
            return f"00-{trace:032x}-{_span_id()}-01"


@functools.lru_cache(maxsize=1024)
def _trace_of(parent: str) -> tuple[str, str] | None:
    """``parent``'s text before and after its span id when it is a valid traceparent, else
    None (decided once per parent: each record's outputs all continue its trace)."""
    if not _TRACEPARENT.fullmatch(parent):
        return None
    version, trace, _span, flags = parent.split("-")
    return f"{version}-{trace}-", f"-{flags}"


#: The length of every valid traceparent (version 00 and any later one this reads).
_TRACEPARENT_LENGTH = 55


def child_traceparent(parent: str | None) -> str:
    """Same trace as ``parent`` with a new span id; a fresh trace when ``parent`` is unusable."""
    # only a value of the right length is looked up: a member's header of any other
    # length is not valid, and is not kept in the cache
    trace = _trace_of(parent) if parent and len(parent) == _TRACEPARENT_LENGTH else None
    if trace is None:
        return new_traceparent()
    return f"{trace[0]}{_span_id()}{trace[1]}"


def member_traceparent(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The ``traceparent`` that ``EventHeaders.from_kafka(strip_internal(headers))`` reads
    (the last one; ``""`` for a null value), without building the rest: the ingress
    continues a member's trace and reads nothing else of its headers."""
    found: bytes | None = None
    seen = False
    for name, raw in headers or ():
        if name == "traceparent":
            found, seen = raw, True
    if not seen:
        return None
    return found.decode("utf-8", errors="replace") if found is not None else ""


@dataclass(frozen=True)
class EventHeaders:
    """The headers of one record, as typed fields."""

    id: str | None = None
    source: str | None = None
    type: str | None = None
    time: str | None = None
    subject: str | None = None
    dataschema: str | None = None
    content_type: str | None = AVRO_CONTENT_TYPE
    flow_id: str | None = None
    traceparent: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        *,
        source: str,
        type: str,
        subject: str | None,
        flow_id: str | None,
        dataschema: str | None = None,
        event_id: str | None = None,
        parent: EventHeaders | None = None,
        extra: dict[str, str] | None = None,
    ) -> EventHeaders:
        """Headers for a new event; ``parent`` continues its trace."""
        return cls(
            id=event_id or str(uuid.uuid4()),
            source=source,
            type=type,
            time=_now_text(),
            subject=subject,
            dataschema=dataschema,
            flow_id=flow_id,
            traceparent=child_traceparent(parent.traceparent if parent else None),
            extra=dict(extra or {}),
        )

    def with_extra(self, **values: str) -> EventHeaders:
        return replace(self, extra={**self.extra, **values})

    def to_kafka(self) -> list[tuple[str, bytes]]:
        """Headers as aiokafka wants them: ``[(name, utf-8 bytes)]``, absent ones left out,
        in the order of ``_CE_FIELDS``, then the extra ones."""
        out: list[tuple[str, bytes]] = [("ce_specversion", b"1.0")]
        append = out.append
        for header, value in (
            ("ce_id", self.id), ("ce_source", self.source), ("ce_type", self.type),
            ("ce_time", self.time), ("ce_subject", self.subject),
            ("ce_dataschema", self.dataschema), ("content-type", self.content_type),
            (FLOW_ID_HEADER, self.flow_id), ("traceparent", self.traceparent),
        ):
            if value is not None:
                append((header, value.encode("utf-8")))
        if self.extra:
            out.extend((name, value.encode("utf-8")) for name, value in self.extra.items())
        return out

    @classmethod
    def from_kafka(cls, headers: Iterable[tuple[str, bytes]] | None) -> EventHeaders:
        """Typed headers from a record's raw ones; undecodable values are replaced, not fatal."""
        values: dict[str, str | None] = {}
        extra: dict[str, str] = {}
        for name, raw in headers or ():
            text = raw.decode("utf-8", errors="replace") if raw is not None else ""
            if name in _CE_FIELDS:
                values[_CE_FIELDS[name]] = text
            elif name != "ce_specversion":
                extra[name] = text
        values.setdefault("content_type", None)
        return cls(**values, extra=extra)  # type: ignore[arg-type]


def header_value(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    """One header's value as text, or None."""
    for key, raw in headers or ():
        if key == name:
            return raw.decode("utf-8", errors="replace")
    return None
