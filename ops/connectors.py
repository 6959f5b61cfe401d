"""Pausing and resuming a partner (`relais connector pause|resume`).

A pause is a compacted record on ``relais.ops.controls`` (key: the partner): the
partner's stages hold their input and its timers skip their rounds until it is
resumed; flows wait, they do not fail. Every change is also written to the audit
journal with who made it and why.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ops.audit import audit_entry
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.catalogue import OPS_AUDIT, OPS_CONTROLS


async def set_connector_paused(
    settings: Settings, partner: str, *, paused: bool, reason: str, operator: str
) -> None:
    """Publish the partner's control record and its audit entry (acknowledged)."""
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="relais-cli")
    await publisher.start()
    try:
        headers = EventHeaders.new(source="/relais/ops/connector",
                                   type="fr.relais.ops.ConnectorControl", subject=partner,
                                   flow_id=None)
        await publisher.publish(
            OPS_CONTROLS.name, key=partner, schema_name="ConnectorControl", headers=headers,
            record={"partner": partner, "paused": paused, "reason": reason,
                    "operator": operator, "at": datetime.now(UTC)},
        )
        action = "connector-pause" if paused else "connector-resume"
        await publisher.publish(
            OPS_AUDIT.name, key=f"connector:{partner}", schema_name="AuditEntry",
            headers=headers,
            record=audit_entry(action, operator=operator, reason=reason,
                               run_id=action, details={"partner": partner}),
        )
    finally:
        await publisher.stop()
