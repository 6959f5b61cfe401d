"""The contractor check of a contract acte (nature 4, CC): never a wait on a registry.

What acts-validation does with a contract's ``contractor_sirets`` depends on the member's
``contractor_check`` (``relais members add --contractor-check``, docs/registries.md):

- ``warn`` (the default): the acte goes on to the TdT at once, and one ``RegistryLookup``
  per SIRET is published on ``relais.registry.requested`` (the registry flow's dispatch:
  checks, the hub-wide cache, else the registry's partition) in the same transaction as
  the acte's forwarding (:func:`contractor_lookups`). Each answer comes back to the member
  as its own notification (flow type ``registry``, ``submission_id``
  ``<acte submission id>~contractor~<SIRET>``), with ``details.warning`` set to
  ``contractor_closed`` or ``contractor_unknown`` when there is something to flag
  (:mod:`agents.registry.answers`).
- ``refuse``: the acte's contractors are read from the worker's view of the hub-wide
  registry cache (:func:`check_contractors`: local, no call). A closed or unknown
  establishment (or a malformed number) rejects the acte, one reason per contractor on
  ``contractor_sirets[i]``; all known and not closed, the acte goes on; any the cache does
  not hold yet are looked up (as in ``warn``) and the acte is parked on a delay tier
  back to acts-validation (:func:`park_contract`), the member told once (a child event
  ``contractor_check`` on the ``received`` acte); after the configured parkings
  (``RELAIS_CONTRACTOR_WAIT_TIERS``, about 15 minutes in all) it is rejected with
  ``contractor_unverified`` (:func:`unverified_reasons`): the member may resubmit.

A slow or closed registry delays only the answers (and, in ``refuse`` mode, that member's
contracts); it never holds acts-validation's partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from agents.acts.deps import CachedAnswers
from agents.registry.answers import CONTRACTOR_CLOSED, CONTRACTOR_UNKNOWN, contractor_warning
from relais.actes.codes import NATURE_BY_ABBREVIATION
from relais.errors import Reason
from relais.flows.ids import flow_id_for
from relais.flows.outbound import Outbound
from relais.identifiers import SIREN_LENGTH, normalize_identifier, siren_reasons, siret_reasons
from relais.kafka.publisher import dataschema_uri
from relais.registry.cache import CacheEntry
from relais.stages import headers as h
from relais.stages.delays import tier
from relais.stages.records import InputRecord
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders
from topics.registry import REGISTRY_REQUESTED

log = structlog.get_logger(__name__)
SOURCE = "/relais/hub/acts-validation"
CONTRACT_NATURE = NATURE_BY_ABBREVIATION["CC"].code  # 4: contrats, conventions et avenants
MAX_CONTRACTORS = 20
"""Contractors checked per acte; more are ignored (and logged) in ``warn`` mode, refused
(``too_many``) in ``refuse`` mode: a contract names a few."""
REGISTRY = "sirene"
"""The registry contractors are asked of (look-ups name ``SIRENE``; the cache, ``sirene``)."""
CONTRACTOR_WAITS = "relais_contractor_waits"
"""Header: how many times a contract has been parked waiting for its contractors' answers
(a ``relais_`` header: the ingress drops it from members' records)."""
CONTRACTOR_UNVERIFIED = "contractor_unverified"
CHILD_EVENT = "contractor_check"
"""``details.child_event`` of the notification telling the member its contract waits."""


def contractor_request_id(submission_id: str, siret: str) -> str:
    return f"{submission_id}~contractor~{siret}"


def is_contract(submission: dict[str, Any]) -> bool:
    return bool(submission["nature_code"] == CONTRACT_NATURE)


def contract_sirets(submission: dict[str, Any]) -> list[tuple[int, str]]:
    """Each distinct contractor SIRET of a contract acte (stripped) with the index of its
    first occurrence in ``contractor_sirets``; none for other natures."""
    if not is_contract(submission):
        return []
    seen: dict[str, int] = {}
    for index, raw in enumerate(submission.get("contractor_sirets") or []):
        siret = raw.strip()
        if siret and siret not in seen:
            seen[siret] = index
    return [(index, siret) for siret, index in seen.items()]


def contractor_lookups(
    codec: AvroCodec, siren: str, submission: dict[str, Any], parent: EventHeaders,
    only: Sequence[str] | None = None,
) -> list[Outbound]:
    """One look-up per distinct contractor SIRET of a contract acte (none otherwise);
    ``only``: those SIRETs alone."""
    sirets = [siret for _, siret in contract_sirets(submission)]
    if len(sirets) > MAX_CONTRACTORS:
        log.warning("acts.contractors_truncated", given=len(sirets), checked=MAX_CONTRACTORS)
        sirets = sirets[:MAX_CONTRACTORS]
    if only is not None:
        sirets = [siret for siret in sirets if siret in only]
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


@dataclass(frozen=True)
class ContractorCheck:
    """What the cache says of a contract's contractors (``refuse`` mode): the reasons to
    reject the acte, the SIRETs it does not hold yet (with their index), and how many were
    found active (or at least not closed)."""

    reasons: list[Reason] = field(default_factory=list)
    uncached: list[tuple[int, str]] = field(default_factory=list)
    known: int = 0


def _field(index: int) -> str:
    return f"contractor_sirets[{index}]"


def _number_reasons(number: str, index: int) -> list[Reason]:
    if len(number) == SIREN_LENGTH:
        return siren_reasons(number, _field(index))
    return siret_reasons(number, _field(index))


def _entry_reason(entry: CacheEntry, index: int) -> Reason | None:
    warning = contractor_warning(entry)
    if warning == CONTRACTOR_CLOSED:
        name = entry.payload.get("name")
        since = entry.payload.get("closed_on")
        return Reason(_field(index), CONTRACTOR_CLOSED,
                      f"the establishment {entry.identifier}"
                      + (f" ({name})" if name else "") + " is closed"
                      + (f" since {since}" if since else "") + f" (per {entry.registry})")
    if warning == CONTRACTOR_UNKNOWN:
        return Reason(_field(index), CONTRACTOR_UNKNOWN,
                      f"{entry.registry} does not know {entry.identifier}")
    return None


def check_contractors(
    cache: CachedAnswers | None, submission: dict[str, Any], now: float
) -> ContractorCheck:
    """Read each contractor of a contract in the local cache view: never a call, never a
    wait. A malformed number or a cached closed or unknown establishment is a reason; a
    number the cache does not hold (fresh) is ``uncached``."""
    sirets = contract_sirets(submission)
    reasons: list[Reason] = []
    if len(sirets) > MAX_CONTRACTORS:
        reasons.append(Reason("contractor_sirets", "too_many",
                              f"a contract names at most {MAX_CONTRACTORS} contractors to "
                              f"check, this one names {len(sirets)}"))
        sirets = sirets[:MAX_CONTRACTORS]
    uncached: list[tuple[int, str]] = []
    known = 0
    for index, siret in sirets:
        number = normalize_identifier(siret)
        malformed = _number_reasons(number, index)
        if malformed:
            reasons.extend(malformed)
            continue
        entry = cache.get(REGISTRY, number, now) if cache is not None else None
        if entry is None:
            uncached.append((index, siret))
            continue
        reason = _entry_reason(entry, index)
        if reason is None:
            known += 1
        else:
            reasons.append(reason)
    return ContractorCheck(reasons, uncached, known)


def unverified_reasons(uncached: Sequence[tuple[int, str]], *, configured: bool) -> list[Reason]:
    """One ``contractor_unverified`` reason per contractor the registry did not answer for
    in time (or cannot be asked: no registry configured on this hub)."""
    why = ("the registry could not be asked in time" if configured
           else "this hub has no business registry configured")
    return [Reason(_field(index), CONTRACTOR_UNVERIFIED,
                   f"{why} whether {siret} is an open establishment; the acte was not sent, "
                   "resubmit it later") for index, siret in uncached]


def park_contract(record: InputRecord, tiers: Sequence[str], waits: int) -> Outbound:
    """The contract, unchanged, on the delay tier of its ``waits``-th parking (counted
    in the :data:`CONTRACTOR_WAITS` header), back to acts-validation's input."""
    delay = tier(tiers[waits])
    headers = h.replace(record.headers, **{
        CONTRACTOR_WAITS: str(waits + 1), h.DELAY_TARGET: record.topic, h.ATTEMPT: None,
    })
    return Outbound(delay.topic.name, record.key, record.value, headers)


def pending_message(uncached: Sequence[tuple[int, str]], tiers: Sequence[str]) -> str:
    total = sum(tier(label).seconds for label in tiers)
    numbers = ", ".join(siret for _, siret in uncached)
    return (f"the acte waits for the registry's answer about its contractors ({numbers}) "
            f"before going to the TdT: at most about {max(round(total / 60), 1)} minutes")
