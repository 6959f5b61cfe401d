"""registry-dispatch: check a look-up, answer it from the cache, or send it to its registry.

Input ``relais.registry.requested`` (keyed by member SIREN, written by the ingress for a
``RegistryLookup``). The number is normalised (typed spaces, dots, dashes) and checked
(length, Luhn, La Poste's rule): a bad one is ``rejected`` with a reason on
``identifier`` and never reaches a registry; API Entreprise needs a ``purpose``. A number
the hub-wide cache knows (fresh) is ``answered`` at once with ``from_cache=true``; any
other goes to ``relais.registry.lookups`` keyed by the registry's name, where the owner of
that registry's partition asks it (docs/registries.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from agents.registry.answers import REGISTRY_NAMES, answer_details, answer_message
from agents.registry.machines import REGISTRY
from relais.errors import Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.identifiers import (
    SIREN_LENGTH,
    normalize_identifier,
    siren_reasons,
    siret_reasons,
)
from relais.registry.cache import RegistryCache
from relais.stages import headers as h
from relais.stages.records import InputRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.registry import REGISTRY_LOOKUPS

log = structlog.get_logger(__name__)
STAGE = "registry-dispatch"
FIELD = "identifier"


@dataclass
class DispatchDeps:
    codec: AvroCodec
    cache: RegistryCache
    clock: Callable[[], float] = field(default=time.time)


def lookup_reasons(identifier: str, registry: str, purpose: str | None) -> list[Reason]:
    """Why a look-up cannot be sent (empty when it can)."""
    number = normalize_identifier(identifier)
    reasons = (siren_reasons(number, FIELD) if len(number) == SIREN_LENGTH
               else siret_reasons(number, FIELD))
    if reasons and reasons[0].code == "format":
        reasons = [Reason(FIELD, "format",
                          f"a SIREN is 9 digits and a SIRET 14, got {identifier!r}")]
    if registry == "entreprise" and not (purpose or "").strip():
        reasons.append(Reason("purpose", "required",
                              "API Entreprise needs the purpose of the look-up"))
    return reasons


async def handle_requested(record: InputRecord, deps: DispatchDeps) -> list[Outbound]:
    lookup = deps.codec.decode(record.value or b"", expected="RegistryLookup").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or lookup["member_siren"]
    flow = FlowContext(h.get(headers, FLOW_ID_HEADER) or "", siren, "registry",
                       lookup["request_id"])
    parent = EventHeaders.from_kafka(headers)
    registry = REGISTRY_NAMES[lookup["registry"]]
    reasons = lookup_reasons(lookup["identifier"], registry, lookup.get("purpose"))
    if reasons:
        log.info("registries.lookup_rejected", fields=[r.field for r in reasons])
        return emit(deps.codec, flow, REGISTRY, stage=STAGE, state="rejected",
                    previous="received", kind="REJECTED",
                    message="the look-up was refused before reaching a registry",
                    parent=parent, reasons=reasons)
    number = normalize_identifier(lookup["identifier"])
    contract = lookup.get("contract_submission_id")
    entry = deps.cache.get(registry, number, deps.clock())
    if entry is not None:
        log.info("registries.lookup_cached", registry=registry, outcome=entry.outcome.value)
        return emit(deps.codec, flow, REGISTRY, stage=STAGE, state="answered",
                    previous="received", kind="STATE_CHANGED",
                    message=answer_message(entry, contract), parent=parent, partner_ref=number,
                    details=answer_details(entry, from_cache=True, contract=contract))
    return [Outbound(REGISTRY_LOOKUPS.name, registry.encode("utf-8"), record.value,
                     h.replace(headers, **{h.ATTEMPT: None}))]
