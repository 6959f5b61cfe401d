"""Confluent framing against a registry double (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from relais.errors import UnknownSchemaError
from relais.wire.avro_codec import AvroCodec
from relais.wire.registry import SchemaRegistryClient, unframe


class RegistryDouble:
    def __init__(self) -> None:
        self.by_id: dict[int, str] = {}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            schema = json.loads(request.content)["schema"]
            for schema_id, known in self.by_id.items():
                if known == schema:
                    return httpx.Response(200, json={"id": schema_id})
            schema_id = 100 + len(self.by_id)
            self.by_id[schema_id] = schema
            return httpx.Response(200, json={"id": schema_id})
        schema_id = int(request.url.path.rsplit("/", 1)[1])
        if schema_id not in self.by_id:
            return httpx.Response(404, json={"error_code": 40403})
        return httpx.Response(200, json={"schema": self.by_id[schema_id]})


def member() -> dict[str, object]:
    return {"siren": "005520135", "name": "X", "department": "021", "token_sha256": "a" * 64,
            "registered_at": datetime(2026, 1, 1, tzinfo=UTC)}


def test_values_are_framed_with_the_registry_id_and_read_back() -> None:
    double = RegistryDouble()
    client = SchemaRegistryClient(httpx.Client(base_url="http://registry",
                                               transport=httpx.MockTransport(double)))
    codec = AvroCodec(registry=client)
    first = codec.encode("Member", member())
    second = codec.encode("Member", member())
    schema_id, _body = unframe(first)
    assert first[:1] == b"\x00" and schema_id == 100 and first == second
    assert double.calls == ["POST /subjects/fr.relais.members.Member-value/versions"]
    reader = AvroCodec(registry=SchemaRegistryClient(
        httpx.Client(base_url="http://registry", transport=httpx.MockTransport(double))))
    decoded = reader.decode(first, expected="Member")
    assert decoded.record["siren"] == "005520135"
    assert double.calls[-1] == "GET /schemas/ids/100"


def test_an_id_the_registry_does_not_know_is_an_unknown_schema() -> None:
    double = RegistryDouble()
    codec = AvroCodec(registry=SchemaRegistryClient(
        httpx.Client(base_url="http://registry", transport=httpx.MockTransport(double))))
    with pytest.raises(UnknownSchemaError):
        codec.decode(b"\x00\x00\x00\x00\x07" + b"\x02")


def test_single_object_values_stay_readable_with_a_registry() -> None:
    plain = AvroCodec(registry=None).encode("Member", member())
    double = RegistryDouble()
    codec = AvroCodec(registry=SchemaRegistryClient(
        httpx.Client(base_url="http://registry", transport=httpx.MockTransport(double))))
    assert codec.decode(plain).record["name"] == "X"
