"""The contractor check of a contract acte (nature 4, CC): look-ups, never a wait.

A validated contract that names ``contractor_sirets`` publishes one ``RegistryLookup`` per
SIRET on ``relais.registry.requested`` (the registry flow's dispatch: checks, the
hub-wide cache, else the registry's partition), in the same transaction as the acte's
forwarding. The acte goes on to the TdT at once; each answer comes back to the member as
its own notification (flow type ``registry``, ``submission_id``
``<acte submission id>~contractor~<SIRET>``), with ``details.warning`` set to
``contractor_closed`` or ``contractor_unknown`` when there is something to flag
(:mod:`agents.registry.answers`). A slow or closed registry delays only those answers.
"""

from __future__ import annotations

from typing import Any

import structlog

from relais.actes.codes import NATURE_BY_ABBREVIATION
from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.kafka.publisher import dataschema_uri
from relais.stages import headers as h
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.registry import REGISTRY_REQUESTED

log = structlog.get_logger(__name__)
SOURCE = "/relais/hub/acts-validation"
CONTRACT_NATURE = NATURE_BY_ABBREVIATION["CC"].code  # 4: contrats, conventions et avenants
MAX_CONTRACTORS = 20
"""Contractors checked per acte; more are ignored (and logged): a contract names a few."""


def contractor_request_id(submission_id: str, siret: str) -> str:
    return f"{submission_id}~contractor~{siret}"


def contractor_lookups(
    codec: AvroCodec, siren: str, submission: dict[str, Any], parent: EventHeaders
) -> list[Outbound]:
    """One look-up per distinct contractor SIRET of a contract acte (none otherwise)."""
    if submission["nature_code"] != CONTRACT_NATURE:
        return []
    sirets = list(dict.fromkeys(s.strip() for s in submission.get("contractor_sirets") or []
                                if s.strip()))
    if len(sirets) > MAX_CONTRACTORS:
        log.warning("acts.contractors_truncated", given=len(sirets), checked=MAX_CONTRACTORS)
        sirets = sirets[:MAX_CONTRACTORS]
    schema = dataschema_uri(codec, "RegistryLookup")
    outbound = []
    for siret in sirets:
        request_id = contractor_request_id(submission["submission_id"], siret)
        flow_id = flow_id_for(siren, request_id)
        value = codec.encode("RegistryLookup", {
            "request_id": request_id, "member_siren": siren, "identifier": siret,
            "registry": "SIRENE", "purpose": None,
            "contract_submission_id": submission["submission_id"],
        })
        headers = EventHeaders.new(source=SOURCE, type="fr.relais.registry.RegistryLookup",
                                   subject=flow_id, flow_id=flow_id, parent=parent,
                                   dataschema=schema)
        kafka_headers = h.replace(headers.to_kafka(), **{FLOW_ID_HEADER: flow_id, h.MEMBER: siren})
        outbound.append(Outbound(REGISTRY_REQUESTED.name, siren.encode("utf-8"), value,
                                 kafka_headers))
    if outbound:
        log.info("acts.contractors_checked", count=len(outbound))
    return outbound
