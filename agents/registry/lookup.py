"""registry-lookup: the owner of a registry's partition answers the look-ups it holds.

Input ``relais.registry.lookups`` (keyed by registry: one partition, hence one worker,
per registry; docs/registries.md). The stage runs :class:`LookupService` (cache, one call
per number in flight, breaker, quota bucket) with a short ``max_wait``, so a handler never
holds its partition for long:

- answered (found, not found, not diffusible; from the cache or the registry): the
  member's ``answered`` notification, with the record's fields in ``details``;
- the registry cannot be asked soon (its number's slot is not due, quota, open circuit):
  the look-up parked on a delay tier until its slot (:func:`parking_tier`), back to this
  topic, and a ``pending`` notification the first time; after :data:`MAX_WAITS`
  parkings the look-up is left to the failure router (dead letter, ``failed``);
- a registry failure (5xx, timeout): raised, for the failure router's retry tiers.

**One wait budget per batch.** The runner commits a batch's outputs together, at its end,
so the look-ups of one batch (at most :data:`BATCH_RECORDS`) share one budget of
``max_wait`` seconds, counted from when the batch's first look-up reached this handler
(:func:`relais.stages.runner.batch_scope`): a look-up whose number's slot is due within it
waits in line for the bucket until then at most, any other is parked at once (``pending``).
So under a backlog a batch lasts about ``max_wait`` seconds, each answer is published
within about ``max_wait`` of its registry call, and the look-ups whose slot is far away are
told ``pending`` within seconds of being read, instead of all waiting in line and being
answered together minutes later. A look-up without a member (``member_siren`` empty: an operator's
``relais registry lookup`` or ``relais members add``) is answered through the cache topic
only: no notification, and dropped (logged) instead of dead-lettered after
:data:`MAX_WAITS` parkings.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from agents.registry.answers import REGISTRY_NAMES, answer_details, answer_message
from agents.registry.machines import REGISTRY
from agents.registry.service import LookupPendingError, LookupService
from relais.errors import Reason
from relais.flows.emit import emit
from relais.flows.outbound import FlowContext, Outbound
from relais.stages import headers as h
from relais.stages.delays import TIERS, DelayTier, tier_for
from relais.stages.records import InputRecord
from relais.stages.runner import batch_scope
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import FLOW_ID_HEADER, EventHeaders

log = structlog.get_logger(__name__)
STAGE = "registry-lookup"
MAX_WAITS = 12
DEFAULT_WAIT = 30.0
#: Records per batch of the look-up stage (``Stage.max_batch_records``): with the batch's
#: wait budget, bounds how long a batch's first answers wait for its commit.
BATCH_RECORDS = 100
_BUDGET = "registry-lookup.deadline"


@dataclass
class LookupDeps:
    codec: AvroCodec
    service: LookupService
    max_wait: float = 5.0


def parking_tier(wait: float, *, leader: bool) -> DelayTier:
    """The delay tier a parked look-up waits on. A leader (it makes its number's call)
    takes the longest tier within its wait, so it is back in time and parks again for the
    rest (5 s at least); the others take the shortest tier covering the wait, so they come
    back once the answer is in the cache."""
    fitting = [tier for tier in TIERS if tier.seconds <= wait]
    within = fitting[-1] if fitting else TIERS[0]
    if leader:
        return within
    covering = tier_for(wait)
    return covering if covering.seconds <= max(2 * wait, TIERS[1].seconds) else within


def _park(deps: LookupDeps, record: InputRecord, flow: FlowContext, parent: EventHeaders,
          registry: str, wait: float, waits: int, *, leader: bool) -> list[Outbound]:
    """The look-up on a delay tier, back to this topic; the member told it is pending the
    first time only (later parkings change nothing it needs to know)."""
    headers = list(record.headers or ())
    target = parking_tier(wait, leader=leader)
    log.debug("registries.lookup_parked", registry=registry, wait=round(wait),
              tier=target.label, leader=leader)
    parked = h.replace(headers, **{h.ATTEMPT: str(waits + 1), h.DELAY_TARGET: record.topic})
    out = [Outbound(target.topic.name, record.key, record.value, parked)]
    if not flow.member_siren or waits > 0:
        return out
    return [
        *emit(deps.codec, flow, REGISTRY, stage=STAGE, state="pending", previous=None,
              kind="STATE_CHANGED", parent=parent,
              message=f"{registry} cannot be asked yet (quota or outage); the answer "
              f"follows in about {max(round(wait), 1)} s",
              details={"registry": registry, "retry_after": str(round(wait))}),
        *out,
    ]


def batch_deadline(deps: LookupDeps) -> float:
    """When the look-ups of the current batch stop waiting in line (service clock time):
    ``max_wait`` after the batch's first look-up got here; a look-up handled outside a
    stage runner has a budget of its own."""
    scope = batch_scope()
    deadline = deps.service.clock() + deps.max_wait
    if scope is None:
        return deadline
    return float(scope.setdefault(_BUDGET, deadline))


async def handle_lookup(record: InputRecord, deps: LookupDeps) -> list[Outbound]:
    lookup = deps.codec.decode(record.value or b"", expected="RegistryLookup").record
    headers = list(record.headers or ())
    siren = h.get(headers, h.MEMBER) or lookup["member_siren"]
    flow = FlowContext(
        h.get(headers, FLOW_ID_HEADER) or "", siren, "registry", lookup["request_id"]
    )
    parent = EventHeaders.from_kafka(headers)
    registry = REGISTRY_NAMES[lookup["registry"]]
    waits = h.get_count(headers, h.ATTEMPT)
    contract = lookup.get("contract_submission_id")
    if registry not in deps.service.connectors:
        log.warning("registries.not_configured", registry=registry)
        if not siren:
            return []
        return emit(deps.codec, flow, REGISTRY, stage=STAGE, state="rejected", previous=None,
                    kind="REJECTED", parent=parent,
                    message=f"the registry {registry} is not configured on this hub",
                    reasons=[Reason("registry", "not_configured",
                                    f"{registry} is not configured on this hub")])
    request = flow.flow_id or f"{siren}:{lookup['request_id']}"
    await deps.service.sweep()  # the owner's tombstones for expired answers, now and then
    deadline = batch_deadline(deps)
    try:
        plan = deps.service.plan(registry, lookup["identifier"], request,
                                 wait_limit=deadline - deps.service.clock())
        if plan is not None:
            if waits < MAX_WAITS:
                return _park(deps, record, flow, parent, registry, plan.wait, waits,
                             leader=plan.leader)
            raise LookupPendingError(f"{registry}: parked {waits} times, still not due",
                                     partner=registry, retry_after=plan.wait)
        answer = await deps.service.lookup(registry, lookup["identifier"], deadline=deadline)
    except ValueError as exc:  # dispatch checks first; a record forged past it lands here
        if not siren:
            log.warning("registries.operator_lookup_invalid", error=str(exc))
            return []
        return emit(
            deps.codec,
            flow,
            REGISTRY,
            stage=STAGE,
            state="rejected",
            previous=None,
            kind="REJECTED",
            message="the look-up was refused",
            parent=parent,
            reasons=[Reason("identifier", "invalid", str(exc))],
        )
    except LookupPendingError as exc:
        if waits >= MAX_WAITS:
            if not siren:
                log.warning("registries.operator_lookup_dropped", registry=registry)
                return []
            raise
        wait = exc.retry_after if exc.retry_after is not None else DEFAULT_WAIT
        return _park(deps, record, flow, parent, registry, wait, waits, leader=True)
    entry = answer.entry
    if not siren:
        return []  # the operator reads the answer on the cache topic
    return emit(
        deps.codec,
        flow,
        REGISTRY,
        stage=STAGE,
        state="answered",
        previous=None,
        kind="STATE_CHANGED",
        message=answer_message(entry, contract),
        parent=parent,
        partner_ref=entry.identifier,
        details=answer_details(entry, from_cache=answer.from_cache, contract=contract),
    )
