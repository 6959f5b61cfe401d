"""Avro encoding of record values.

Default wire format: Avro *single-object encoding* — the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's parsing canonical form, then the Avro binary body. A reader looks the
fingerprint up among every recorded version of every schema (``schemas/history``)
and resolves the writer's version into the current one.

When a schema registry is configured (``RELAIS_SCHEMA_REGISTRY_URL``), values use
Confluent framing instead: a zero byte, a 4-byte big-endian schema id, the
Avro body; see :mod:`relais.wire.registry`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import LOGICAL_READERS
from fastavro.schema import fingerprint, to_parsing_canonical_form

import schemas
from relais.errors import Reason, UnknownSchemaError, ValidationError, ValueDecodeError
from relais.wire.registry import (
    SchemaRegistryClient,
    frame,
    registry_from_environment,
    unframe,
)

SINGLE_OBJECT_MARKER = b"\xc3\x01"
_HEADER_LENGTH = len(SINGLE_OBJECT_MARKER) + 8


@dataclass(frozen=True)
class SchemaVersion:
    """One recorded version of a schema, ready to read or write with."""

    name: str
    full_name: str
    version: int
    parsed: Any
    fingerprint: bytes
    #: The same schema without logical types: reads any body the Avro types allow, so
    #: a value a logical type cannot hold (a date past year 9999) can be found by name.
    plain: Any = None
    #: ``parsed`` with fastavro's "already parsed" marker: what encode and decode hand to
    #: fastavro, which re-parses an unmarked schema on every call (3× the cost of the
    #: write itself). ``parsed`` stays unmarked for the canonical form and for walking.
    compiled: Any = None


@dataclass(frozen=True)
class Decoded:
    """A decoded value: the current schema's name, the record, and the writer's version."""

    schema_name: str
    record: dict[str, Any]
    writer_version: int


def _version(name: str, version: int, schema_json: dict[str, Any]) -> SchemaVersion:
    parsed = parse_schema(schema_json, _write_hint=False)
    canonical = to_parsing_canonical_form(parsed)
    return SchemaVersion(
        name=name,
        full_name=f"{schema_json.get('namespace', '')}.{schema_json['name']}".lstrip("."),
        version=version,
        parsed=parsed,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        plain=parse_schema(_without_logical_types(schema_json), _write_hint=False),
        compiled=parse_schema(schema_json),
    )


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(item) for item in schema]
    return schema


_PRIMITIVE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "long": (int,), "string": (str,), "bytes": (bytes,),
    "float": (float,), "double": (float,), "boolean": (bool,),
}


def _logical_reasons(schema: Any, value: Any, path: str, names: dict[str, Any]) -> list[Reason]:
    """A reason for each value under ``path`` that its logical type cannot hold."""
    if isinstance(schema, str):
        schema = names.get(schema, schema)
    if isinstance(schema, list):  # a union: try the branches the value's type fits
        reasons: list[Reason] = []
        for branch in schema:
            reasons = _logical_reasons(branch, value, path, names)
            if reasons:
                return reasons
        return reasons
    if not isinstance(schema, dict):
        return []
    kind = schema.get("type")
    if kind == "record":
        names[schema.get("name", "")] = schema
        if not isinstance(value, dict):
            return []
        found: list[Reason] = []
        for item in schema.get("fields", []):
            child = f"{path}.{item['name']}" if path else item["name"]
            found += _logical_reasons(item["type"], value.get(item["name"]), child, names)
        return found
    if kind == "array" and isinstance(value, list):
        return [r for i, v in enumerate(value)
                for r in _logical_reasons(schema["items"], v, f"{path}[{i}]", names)]
    if kind == "map" and isinstance(value, dict):
        return [r for k, v in value.items()
                for r in _logical_reasons(schema["values"], v, f"{path}[{k!r}]", names)]
    logical = schema.get("logicalType")
    convert = LOGICAL_READERS.get(f"{kind}-{logical}") if logical else None
    if convert is None or not isinstance(value, _PRIMITIVE_TYPES.get(str(kind), (object,))):
        return []
    try:
        convert(value, schema, schema)
    except Exception as exc:  # the logical type's own converter says it cannot hold it
        detail = str(exc) or exc.__class__.__name__
        return [Reason(path or "value", "out_of_range",
                       f"{value!r} is out of range for a {logical} ({detail})")]
    return []


class SchemaCatalog:
    """Every schema Relais knows, current and historical, indexed by fingerprint."""

    def __init__(self) -> None:
        self._current: dict[str, SchemaVersion] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for name in schemas.schema_names():
            recorded = schemas.history(name)
            current_json = schemas.load_schema_json(name)
            latest = recorded[-1][0] if recorded else 1
            current = _version(name, latest, current_json)
            self._current[name] = current
            for version, schema_json in recorded:
                known = _version(name, version, schema_json)
                self._by_fingerprint.setdefault(known.fingerprint, known)
            self._by_fingerprint[current.fingerprint] = current

    def current(self, name: str) -> SchemaVersion:
        try:
            return self._current[name]
        except KeyError:
            raise UnknownSchemaError(f"no schema named {name!r}") from None

    def by_fingerprint(self, fp: bytes) -> SchemaVersion:
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise UnknownSchemaError(
                f"value written with an unknown schema (fingerprint {fp.hex()})"
            ) from None


class AvroCodec:
    """Encodes record values in Avro single-object encoding, or in Confluent framing when
    built with a schema registry; decodes both."""

    def __init__(
        self,
        catalog: SchemaCatalog | None = None,
        registry: SchemaRegistryClient | None = None,
    ) -> None:
        self.catalog = catalog or SchemaCatalog()
        self.registry = registry if registry is not None else registry_from_environment()
        #: registry schema id → the recorded version it is, found once per id (parsing the
        #: registry's schema and fingerprinting it cost more than decoding a record)
        self._registry_writers: dict[int, SchemaVersion] = {}

    def encode(self, schema_name: str, record: dict[str, Any]) -> bytes:
        """Encode ``record`` with the current version of ``schema_name``.

        Raises ValidationError when the record does not match the schema.
        """
        schema = self.catalog.current(schema_name)
        buffer = io.BytesIO()
        if self.registry is not None:
            schema_id = self.registry.register(
                f"{schema.full_name}-value", schemas.load_schema_json(schema_name)
            )
            buffer.write(frame(schema_id, b""))
        else:
            buffer.write(SINGLE_OBJECT_MARKER)
            buffer.write(schema.fingerprint)
        try:
            schemaless_writer(buffer, schema.compiled, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValidationError(f"record does not match schema {schema_name}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes, expected: str | None = None) -> Decoded:
        """Decode a value into the current version of its schema.

        Raises ValueDecodeError for bytes that are not a single-object Avro value,
        UnknownSchemaError for an unknown fingerprint or a schema other than
        ``expected``.
        """
        if data[:1] == b"\x00" and self.registry is not None:
            schema_id, body_bytes = unframe(data)
            writer = self._registry_writer(self.registry, schema_id)
            data = SINGLE_OBJECT_MARKER + writer.fingerprint + body_bytes
        if len(data) < _HEADER_LENGTH or data[:2] != SINGLE_OBJECT_MARKER:
            raise ValueDecodeError("value is not Avro single-object encoded (bad marker bytes)")
        writer = self.catalog.by_fingerprint(data[2:_HEADER_LENGTH])
        if expected is not None and writer.name != expected:
            raise UnknownSchemaError(f"expected a {expected} value, got {writer.name}")
        reader = self.catalog.current(writer.name)
        body = io.BytesIO(data[_HEADER_LENGTH:])
        try:
            record = schemaless_reader(body, writer.compiled, reader.compiled)
        except Exception as exc:  # any failure to read hostile bytes is a decode error
            reasons = self._locate(writer, data[_HEADER_LENGTH:])
            if reasons:
                raise ValueDecodeError(
                    f"{writer.name} value out of range: "
                    + "; ".join(f"{r.field}: {r.message}" for r in reasons),
                    reasons=reasons,
                ) from exc
            raise ValueDecodeError(
                f"truncated or corrupt {writer.name} value: {exc or exc.__class__.__name__}",
                reasons=[Reason("value", "value_decode", f"{exc.__class__.__name__}: {exc}")],
            ) from exc
        if body.read(1):
            raise ValueDecodeError(f"trailing bytes after a {writer.name} value")
        if not isinstance(record, dict):
            raise ValueDecodeError(f"{writer.name} value is not a record")
        return Decoded(schema_name=writer.name, record=record, writer_version=writer.version)

    def _registry_writer(self, registry: SchemaRegistryClient, schema_id: int) -> SchemaVersion:
        """The recorded schema version registered as ``schema_id`` (only known versions are
        kept, so the cache never outgrows the catalogue)."""
        known = self._registry_writers.get(schema_id)
        if known is None:
            writer_json = registry.schema(schema_id)
            known = self.catalog.by_fingerprint(_version("?", 0, writer_json).fingerprint)
            self._registry_writers[schema_id] = known
        return known

    @staticmethod
    def _locate(writer: SchemaVersion, body: bytes) -> list[Reason]:
        """The fields of a value that its Avro types read but its logical types refuse."""
        try:
            plain = schemaless_reader(io.BytesIO(body), writer.plain, None)
            return _logical_reasons(writer.parsed, plain, "", {})
        except Exception:  # the body is broken below the logical types: no field to name
            return []
