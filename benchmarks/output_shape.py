"""What the hub's ingress wrote per input in a ladder run, and L1b's outputs built to it.

The ladder reads the records the L2 ingress rung committed (:class:`ShapeMeter`) and
hands their shape (:class:`OutputShape`) to the L1b bare loop, which writes per input as
many records of each kind as the ingress did, each with a value of the same size and
headers of the same names and value sizes (:class:`DurableOutputs`): the hub's durable
I/O without the hub's work. Every record the hub writes carries CloudEvents headers
(``relais/wire/headers.py``); a baseline without them would be cheaper than the hub's
real I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from relais.flows.outbound import FlowContext, notification_record
from relais.wire.avro_codec import AvroCodec

Headers = Sequence[tuple[str, bytes | None]] | None


def topic_family(topic: str) -> str:
    """``topic`` with a member's SIREN replaced by ``*`` (one line per kind of output)."""
    if topic.startswith("relais.member."):
        return "relais.member.*." + topic.rsplit(".", 1)[-1]
    return topic


def is_member_family(family: str) -> bool:
    """Whether ``family`` (:func:`topic_family`) is a kind of member topic."""
    return family.startswith("relais.member.*.")


def l1b_topic(family: str, siren: str) -> str:
    """Where L1b writes an output of ``family`` for member ``siren``: the member's own
    topic for a member topic, else the family's mirror (:func:`mirror_topic`)."""
    if is_member_family(family):
        return family.replace("*", siren, 1)
    return mirror_topic(family)


def mirror_topic(name: str) -> str:
    """The bench topic standing in for hub topic ``name`` (as many partitions; the hub's
    stages never read it)."""
    return "relais.bench-l1b." + name.removeprefix("relais.")


def header_bytes(headers: Headers) -> int:
    """Bytes of the headers' names and values (Kafka adds a length varint to each)."""
    return sum(len(name.encode("utf-8")) + len(value or b"") for name, value in headers or ())


@dataclass(frozen=True)
class Slot:
    """One kind of output record: the topic family it went to, how many per input, the
    mean value size and each header's name with a value of the mean size (a value the hub
    wrote, cut or padded to that size; latin-1 text so any bytes survive JSON)."""

    topic: str
    per_input: float
    value_bytes: int
    headers: tuple[tuple[str, str], ...] = ()

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The slot's headers as aiokafka sends them."""
        return [(name, value.encode("latin-1")) for name, value in self.headers]

    @property
    def header_bytes(self) -> int:
        return header_bytes(self.kafka_headers())


@dataclass(frozen=True)
class OutputShape:
    """The ingress's outputs per input, and the inputs' mean sizes."""

    inputs: int
    input_value_bytes: float = 0.0
    input_header_bytes: float = 0.0
    slots: tuple[Slot, ...] = ()

    @property
    def outputs_per_input(self) -> float:
        return sum(s.per_input for s in self.slots)

    def _mean(self, of: str) -> float:
        total = self.outputs_per_input
        return sum(s.per_input * getattr(s, of) for s in self.slots) / total if total else 0.0

    @property
    def header_bytes_per_output(self) -> float:
        return self._mean("header_bytes")

    @property
    def headers_per_output(self) -> float:
        total = self.outputs_per_input
        return (sum(s.per_input * len(s.headers) for s in self.slots) / total
                if total else 0.0)

    @property
    def value_bytes_per_output(self) -> float:
        return self._mean("value_bytes")

    def without_headers(self) -> OutputShape:
        return OutputShape(self.inputs, self.input_value_bytes, self.input_header_bytes,
                           tuple(Slot(s.topic, s.per_input, s.value_bytes) for s in self.slots))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> OutputShape:
        data = json.loads(text)
        slots = tuple(Slot(s["topic"], float(s["per_input"]), int(s["value_bytes"]),
                           tuple((str(n), str(v)) for n, v in s["headers"]))
                      for s in data["slots"])
        return cls(int(data["inputs"]), float(data["input_value_bytes"]),
                   float(data["input_header_bytes"]), slots)


@dataclass
class _Kind:
    count: int = 0
    value_bytes: int = 0
    header_sizes: list[int] = field(default_factory=list)
    sample: list[tuple[str, bytes]] = field(default_factory=list)


class ShapeMeter:
    """Accumulates records (the ingress's inputs and outputs) into an :class:`OutputShape`.
    Outputs are grouped by topic family and header names."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, tuple[str, ...]], _Kind] = {}
        self._inputs = 0
        self._input_value = 0
        self._input_headers = 0

    def add_input(self, value: bytes | None, headers: Headers) -> None:
        self._inputs += 1
        self._input_value += len(value or b"")
        self._input_headers += header_bytes(headers)

    def add_output(self, topic: str, value: bytes | None, headers: Headers) -> None:
        pairs = [(name, bytes(raw or b"")) for name, raw in headers or ()]
        kind = self._kinds.setdefault((topic_family(topic), tuple(n for n, _ in pairs)),
                                      _Kind(header_sizes=[0] * len(pairs), sample=pairs))
        kind.count += 1
        kind.value_bytes += len(value or b"")
        for index, (_, raw) in enumerate(pairs):
            kind.header_sizes[index] += len(raw)

    def shape(self, inputs: int) -> OutputShape:
        """The shape per input, ``inputs`` being the records the ingress read."""
        per = max(inputs, 1)
        slots = []
        for (topic, _names), kind in sorted(self._kinds.items(), key=lambda k: k[0][0]):
            headers = tuple(
                (name, _sized(raw, round(total / kind.count)).decode("latin-1"))
                for (name, raw), total in zip(kind.sample, kind.header_sizes, strict=True))
            slots.append(Slot(topic, kind.count / per, round(kind.value_bytes / kind.count),
                              headers))
        return OutputShape(
            inputs=inputs,
            input_value_bytes=self._input_value / self._inputs if self._inputs else 0.0,
            input_header_bytes=self._input_headers / self._inputs if self._inputs else 0.0,
            slots=tuple(slots))


def _sized(raw: bytes, size: int) -> bytes:
    return raw[:size].ljust(size, b"0")


class DurableOutputs:
    """L1b's outputs for each input: per slot, ``per_input`` records on average (a
    fractional rate spread over the inputs), each an Avro notification whose message pads
    it to the slot's value size (cut to it on a mirror when the hub's record is smaller
    than the smallest notification), with the slot's headers, to the slot's topic
    (:func:`l1b_topic`: the member's, or a mirror with the hub topic's partitions)."""

    def __init__(self, codec: AvroCodec, shape: OutputShape) -> None:
        self._codec = codec
        self._shape = shape
        self._headers = [s.kafka_headers() for s in shape.slots]
        self._padding: dict[int, int] = {}
        self._inputs = 0

    def for_input(self, flow: FlowContext,
                  ) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
        """(topic, key, value, headers) of every output of one input."""
        n = self._inputs
        self._inputs += 1
        key = flow.flow_id.encode("utf-8")
        out = []
        for index, slot in enumerate(self._shape.slots):
            copies = int((n + 1) * slot.per_input + 1e-9) - int(n * slot.per_input + 1e-9)
            topic = l1b_topic(slot.topic, flow.member_siren)
            for _ in range(copies):
                value = self._value(index, flow, slot.value_bytes)
                if topic == mirror_topic(slot.topic):  # never read: cut to the hub's size
                    value = value[:slot.value_bytes]
                out.append((topic, key, value, self._headers[index]))
        return out

    def _value(self, index: int, flow: FlowContext, size: int) -> bytes:
        padding = self._padding.get(index)
        if padding is None:
            padding = max(0, size - len(self._encode(flow, 0)))
            over = len(self._encode(flow, padding)) - size  # the length prefix grew
            padding = max(0, padding - max(over, 0))
            self._padding[index] = padding
        return self._encode(flow, padding)

    def _encode(self, flow: FlowContext, padding: int) -> bytes:
        return self._codec.encode("Notification", notification_record(
            flow, kind="ACCEPTED", state="received", message="." * padding))


def shape_summary(shape: OutputShape) -> dict[str, Any]:
    """The figures the ladder prints and writes for a shape."""
    return {
        "inputs": shape.inputs,
        "input_value_bytes": round(shape.input_value_bytes, 1),
        "input_header_bytes": round(shape.input_header_bytes, 1),
        "outputs_per_input": round(shape.outputs_per_input, 3),
        "headers_per_output": round(shape.headers_per_output, 2),
        "header_bytes_per_output": round(shape.header_bytes_per_output, 1),
        "value_bytes_per_output": round(shape.value_bytes_per_output, 1),
        "by_topic": {s.topic: {"per_input": round(s.per_input, 3),
                               "value_bytes": s.value_bytes,
                               "headers": len(s.headers), "header_bytes": s.header_bytes}
                     for s in shape.slots},
    }
