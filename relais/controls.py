"""Connector pauses, as every hub process sees them (``relais.ops.controls``)."""

from __future__ import annotations

from typing import Any

from relais.kafka.compacted_view import CompactedView
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import OPS_CONTROLS


class ConnectorControls:
    """Which partners are paused; a paused partner's stages stop consuming until resumed."""

    def __init__(self, bootstrap_servers: str, codec: AvroCodec) -> None:
        self.view: CompactedView[dict[str, Any]] = CompactedView(
            bootstrap_servers, codec, topic=OPS_CONTROLS.name, schema_name="ConnectorControl",
            parse=lambda record: record,
        )

    def paused(self, partner: str) -> bool:
        control = self.view.get(partner)
        return bool(control and control["paused"])

    def all(self) -> list[dict[str, Any]]:
        return self.view.values()

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()
