"""A Confluent-framed value's writer schema is parsed once per registry id, not per record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from relais.wire import avro_codec
from relais.wire.avro_codec import AvroCodec
from relais.wire.registry import SchemaRegistryClient
from tests.unit.test_confluent_framing import RegistryDouble


def _member(name: str) -> dict[str, object]:
    return {"siren": "005520135", "name": name, "department": "021", "token_sha256": "a" * 64,
            "registered_at": datetime(2026, 1, 1, tzinfo=UTC)}


def _client(double: RegistryDouble) -> SchemaRegistryClient:
    return SchemaRegistryClient(httpx.Client(base_url="http://registry",
                                             transport=httpx.MockTransport(double)))


def test_the_writer_schema_is_parsed_once_per_registry_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    double = RegistryDouble()
    values = [AvroCodec(registry=_client(double)).encode("Member", _member(f"X{i}"))
              for i in range(5)]
    reader = AvroCodec(registry=_client(double))
    parsed: list[str] = []
    real_version = avro_codec._version

    def counting(name: str, version: int, schema_json: dict[str, Any]) -> Any:
        parsed.append(name)
        return real_version(name, version, schema_json)

    monkeypatch.setattr(avro_codec, "_version", counting)
    names = [reader.decode(value, expected="Member").record["name"] for value in values]
    assert names == ["X0", "X1", "X2", "X3", "X4"]
    assert parsed == ["?"]
