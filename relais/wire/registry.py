"""Confluent framing, for deployments with a schema registry (``RELAIS_SCHEMA_REGISTRY_URL``).

Wire format: a zero byte, the 4-byte big-endian schema id the registry gave the
writer schema, then the Avro binary body. Relais registers each current schema
under the subject ``<full name>-value`` on first use and looks unknown ids up
(``GET /schemas/ids/<id>``); both answers are cached for the life of the
process, so the registry is called once per schema, not per record. The client
is synchronous on purpose: encoding happens inside handlers, and a lookup is a
one-time cost per schema.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx

from relais.errors import InfrastructureError, UnknownSchemaError

MAGIC = b"\x00"
HEADER = struct.Struct(">bI")


class SchemaRegistryClient:
    """The two calls Relais needs from a Confluent-compatible registry."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """The id of ``schema`` under ``subject`` (registered if new)."""
        if subject in self._ids:
            return self._ids[subject]
        try:
            response = self._client.post(
                f"/subjects/{subject}/versions",
                json={"schema": json.dumps(schema)},
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"schema registry: cannot register {subject}: {exc}") from exc
        schema_id = int(response.json()["id"])
        self._ids[subject] = schema_id
        self._schemas[schema_id] = schema
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The writer schema with this id."""
        if schema_id in self._schemas:
            return self._schemas[schema_id]
        try:
            response = self._client.get(f"/schemas/ids/{schema_id}")
        except httpx.HTTPError as exc:
            raise InfrastructureError(
                f"schema registry: cannot read id {schema_id}: {exc}"
            ) from exc
        if response.status_code == 404:
            raise UnknownSchemaError(f"the registry knows no schema id {schema_id}")
        if response.is_error:
            raise InfrastructureError(
                f"schema registry: HTTP {response.status_code} for id {schema_id}"
            )
        schema: dict[str, Any] = json.loads(response.json()["schema"])
        self._schemas[schema_id] = schema
        return schema


def frame(schema_id: int, body: bytes) -> bytes:
    return HEADER.pack(0, schema_id) + body


def unframe(data: bytes) -> tuple[int, bytes]:
    """``(schema id, body)`` of a Confluent-framed value."""
    if len(data) < HEADER.size or data[:1] != MAGIC:
        raise UnknownSchemaError("value is not Confluent framed")
    _magic, schema_id = HEADER.unpack(data[: HEADER.size])
    return schema_id, data[HEADER.size :]


_FROM_ENVIRONMENT: dict[str, SchemaRegistryClient | None] = {}


def registry_from_environment() -> SchemaRegistryClient | None:
    """The registry named by RELAIS_SCHEMA_REGISTRY_URL (one client per process), or None."""
    from relais.settings import Settings

    settings = Settings.from_env()
    url = settings.schema_registry_url
    if not url:
        return None
    if url not in _FROM_ENVIRONMENT:
        auth = (
            httpx.BasicAuth(settings.schema_registry_user, settings.schema_registry_password)
            if settings.schema_registry_user
            else None
        )
        _FROM_ENVIRONMENT[url] = SchemaRegistryClient(
            httpx.Client(base_url=url, auth=auth, timeout=10.0)
        )
    return _FROM_ENVIRONMENT[url]
