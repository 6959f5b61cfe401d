"""Schema evolution guard: can the new version of a schema read what the old one wrote?

Relais readers resolve every recorded writer version into the current schema
(see :mod:`relais.wire.avro_codec`), so each change to a ``*.avsc`` must be
*backward compatible*: data written with any older version must stay readable
with the new one. :func:`backward_problems` checks it two ways:

* dynamically, by writing deterministic sample data with the old schema (one
  sample per union branch and enum symbol, see :func:`sample_datum`) and reading
  it back with fastavro's schema resolution into the new schema;
* statically, by looking for fields added without a default and enum symbols
  removed without an enum default, which fail only for some data.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_MAX_DEPTH = 8
_MAX_VARIANTS = 64

_SAMPLE_DATE = date(2024, 3, 15)
_SAMPLE_DATETIME = datetime(2024, 3, 15, 10, 30, 45, 123000, tzinfo=UTC)
_SAMPLE_TIME = time(10, 30, 45, 123000)


def parse(schema_json: Mapping[str, Any] | list[Any] | str) -> Any:
    """Parse a schema's JSON with fastavro (as the codec does), without mutating it."""
    return parse_schema(copy.deepcopy(schema_json), _write_hint=False)


# --- named types ---------------------------------------------------------------------------


def _walk(schema: Any) -> Iterator[Any]:
    """Every schema node reachable from ``schema`` (named references not followed)."""
    yield schema
    if isinstance(schema, list):
        for branch in schema:
            yield from _walk(branch)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            for f in schema.get("fields", []):
                yield from _walk(f["type"])
        elif kind == "array":
            yield from _walk(schema["items"])
        elif kind == "map":
            yield from _walk(schema["values"])
        elif isinstance(kind, dict | list):
            yield from _walk(kind)


def named_types(schema: Any) -> dict[str, dict[str, Any]]:
    """Named types (records, enums, fixed) defined in ``schema``, by full and short name."""
    found: dict[str, dict[str, Any]] = {}
    for node in _walk(schema):
        if isinstance(node, dict) and node.get("type") in _NAMED and "name" in node:
            full = _full_name(node)
            found.setdefault(full, node)
            found.setdefault(full.rsplit(".", 1)[-1], node)
    return found


def _full_name(node: Mapping[str, Any]) -> str:
    name = str(node["name"])
    namespace = node.get("namespace")
    if "." not in name and namespace:
        return f"{namespace}.{name}"
    return name


def _resolve(schema: Any, named: Mapping[str, dict[str, Any]]) -> Any:
    if isinstance(schema, str) and schema not in PRIMITIVES:
        try:
            return named[schema]
        except KeyError:
            raise ValueError(f"unknown named type {schema!r}") from None
    if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
        return schema["type"]
    return schema


# --- sample data ---------------------------------------------------------------------------


def sample_datum(schema: Any, variant: int = 0) -> Any:
    """A deterministic example value of a parsed fastavro ``schema``.

    ``variant`` 0 takes the first non-null branch of every union and the first
    symbol of every enum; variant ``k`` takes the ``k``-th branch after it (cycling)
    and the ``k``-th symbol, so variants ``0 .. variant_count(schema) - 1`` use
    each branch of each union and each enum symbol at least once.
    """
    return _sample(schema, variant, named_types(schema), 0)


def variant_count(schema: Any) -> int:
    """How many variants of :func:`sample_datum` cover every union branch and enum symbol."""
    count = 1
    for node in _walk(schema):
        if isinstance(node, list):
            count = max(count, len(node))
        elif isinstance(node, dict) and node.get("type") == "enum":
            count = max(count, len(node.get("symbols", [])))
    return min(count, _MAX_VARIANTS)


def _sample(schema: Any, variant: int, named: Mapping[str, dict[str, Any]], depth: int) -> Any:
    schema = _resolve(schema, named)
    if isinstance(schema, list):
        return _sample_union(schema, variant, named, depth)
    if isinstance(schema, str):
        return _sample_primitive(schema, variant)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical is not None:
        value = _sample_logical(schema, logical)
        if value is not None:
            return value
    if kind in ("record", "error"):
        return {f["name"]: _sample(f["type"], variant, named, depth + 1) for f in schema["fields"]}
    if kind == "enum":
        symbols: list[str] = schema["symbols"]
        return symbols[variant % len(symbols)]
    if kind == "array":
        if depth >= _MAX_DEPTH:
            return []
        return [_sample(schema["items"], variant, named, depth + 1)]
    if kind == "map":
        if depth >= _MAX_DEPTH:
            return {}
        return {"key": _sample(schema["values"], variant, named, depth + 1)}
    if kind == "fixed":
        size = int(schema["size"])
        return bytes((variant + i) % 256 for i in range(size))
    if kind in PRIMITIVES:
        return _sample_primitive(kind, variant)
    raise ValueError(f"cannot build a sample of schema type {kind!r}")


def _sample_union(
    branches: list[Any], variant: int, named: Mapping[str, dict[str, Any]], depth: int
) -> Any:
    if not branches:
        raise ValueError("empty union")
    if depth >= _MAX_DEPTH and "null" in branches:
        return None
    non_null = [i for i, branch in enumerate(branches) if branch != "null"]
    first = non_null[0] if non_null else 0
    chosen = branches[(first + variant) % len(branches)]
    return _sample(chosen, variant, named, depth + 1)


def _sample_primitive(kind: str, variant: int) -> Any:
    if kind == "null":
        return None
    if kind == "boolean":
        return variant % 2 == 0
    if kind in ("int", "long"):
        return 7 + variant
    if kind in ("float", "double"):
        return 1.5 + variant
    if kind == "bytes":
        return bytes([0xC3, variant % 256])
    if kind == "string":
        return f"sample-{variant}"
    raise ValueError(f"unknown primitive type {kind!r}")


def _sample_logical(schema: Mapping[str, Any], logical: str) -> Any:
    kind = schema["type"]
    if logical == "date" and kind == "int":
        return _SAMPLE_DATE
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
        return _SAMPLE_DATETIME
    if logical in ("local-timestamp-millis", "local-timestamp-micros") and kind == "long":
        return _SAMPLE_DATETIME.replace(tzinfo=None)
    if logical in ("time-millis", "time-micros"):
        return _SAMPLE_TIME
    if logical == "uuid" and kind == "string":
        return "8d6f6b5e-2b0a-4c41-9a55-0c8c5d3c2e11"
    if logical == "decimal" and kind in ("bytes", "fixed"):
        scale = int(schema.get("scale", 0))
        return Decimal(12345).scaleb(-scale)
    return None  # unknown logical type: the underlying type's sample


# --- compatibility -------------------------------------------------------------------------


def backward_problems(old_json: Mapping[str, Any], new_json: Mapping[str, Any]) -> list[str]:
    """Why a reader with ``new_json`` cannot read data written with ``old_json``.

    Empty when the change is backward compatible as far as the checks can tell.
    """
    try:
        old = parse(old_json)
    except Exception as exc:
        return [f"old schema does not parse: {type(exc).__name__}: {exc}"]
    try:
        new = parse(new_json)
    except Exception as exc:
        return [f"new schema does not parse: {type(exc).__name__}: {exc}"]
    problems = _static_problems(old, new)
    for message in _read_problems(old, new):
        if message not in problems:
            problems.append(message)
    return problems


def _read_problems(old: Any, new: Any) -> list[str]:
    problems: list[str] = []
    for variant in range(variant_count(old)):
        try:
            datum = sample_datum(old, variant)
            buffer = io.BytesIO()
            schemaless_writer(buffer, old, datum)
        except Exception as exc:
            problems.append(
                f"cannot write sample {variant} with the old schema: {type(exc).__name__}: {exc}"
            )
            continue
        size = buffer.tell()
        buffer.seek(0)
        try:
            schemaless_reader(buffer, old, new)
        except Exception as exc:
            problems.append(
                f"data written with the old schema (sample {variant}) cannot be read with the "
                f"new one: {type(exc).__name__}: {exc}"
            )
            continue
        if buffer.tell() != size:
            problems.append(
                f"reading sample {variant} with the new schema left {size - buffer.tell()} "
                "unread bytes"
            )
    # the same failure is usually hit by several samples: report it once
    return list(dict.fromkeys(problems))


def _static_problems(old: Any, new: Any) -> list[str]:
    problems: list[str] = []
    old_named = named_types(old)
    unique = {id(t): t for t in named_types(new).values()}
    for new_type in unique.values():
        full_name = _full_name(new_type)
        old_type = _counterpart(new_type, old_named)
        if old_type is None or old_type.get("type") != new_type.get("type"):
            continue
        if new_type["type"] in ("record", "error"):
            problems.extend(_record_problems(full_name, old_type, new_type))
        elif new_type["type"] == "enum":
            removed = [s for s in old_type["symbols"] if s not in new_type["symbols"]]
            if removed and "default" not in new_type:
                problems.append(
                    f"{full_name}: enum symbols removed without an enum default: "
                    f"{', '.join(removed)}"
                )
        elif new_type["type"] == "fixed" and old_type.get("size") != new_type.get("size"):
            problems.append(
                f"{full_name}: fixed size changed from {old_type.get('size')} "
                f"to {new_type.get('size')}"
            )
    return problems


def _counterpart(
    new_type: Mapping[str, Any], old_named: Mapping[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The old named type ``new_type`` resolves from: same full name, or one of its aliases."""
    names = [_full_name(new_type), *new_type.get("aliases", [])]
    for name in names:
        if name in old_named:
            return old_named[name]
    return None


def _record_problems(
    full_name: str, old_type: Mapping[str, Any], new_type: Mapping[str, Any]
) -> list[str]:
    problems = []
    old_fields = {f["name"] for f in old_type["fields"]}
    for f in new_type["fields"]:
        names = {f["name"], *f.get("aliases", [])}
        if names & old_fields:
            continue
        if "default" not in f:
            problems.append(
                f"{full_name}.{f['name']}: field added without a default, so data written "
                "before it existed cannot be read"
            )
    return problems
