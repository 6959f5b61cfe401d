"""The look-up service a registry's owner runs: cache, single-flight, breaker, quota, call.

:meth:`LookupService.lookup` answers a number from the hub-wide cache when it can; else it
joins the call already in flight for that number, or makes one: it waits for the
registry's circuit breaker and quota bucket (in arrival order: one waiter sleeps, the
others queue behind it), calls the connector, and writes the answer to the cache (and
through ``publish`` to the compacted cache topic) before returning it. A 429 empties and
blocks the bucket for ``Retry-After`` and the call is tried again; a number whose wait
would pass ``max_wait`` raises :class:`LookupPendingError` so the caller can park it on
the delay tiers and tell the member it is pending (docs/registries.md).

The bucket is the partition owner's: when a worker is assigned a registry's partition
(first start, crash or rebalance), :meth:`LookupService.take_over` restarts that registry's
gate from the state the last owner published on ``relais.registry.quota`` (an empty bucket,
its ``Retry-After`` block); a 429 publishes the new block there (``publish_quota``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from connectors.registries.errors import RegistryNotDiffusibleError, RegistryQuotaError
from connectors.registries.models import LookupResult, NotFound, RegistryRecord
from relais.errors import PartnerTransientError
from relais.identifiers import identifier_kind, normalize_identifier
from relais.registry.breaker import BreakerState, CircuitBreaker
from relais.registry.bucket import BucketState, TokenBucket
from relais.registry.cache import CacheEntry, CachePolicy, Outcome, RegistryCache, make_entry
from relais.registry.singleflight import SingleFlight

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Publish = Callable[[CacheEntry], Awaitable[None]]
PublishQuota = Callable[[str, BucketState], Awaitable[None]]
PublishTombstones = Callable[[list[str]], Awaitable[None]]
QuotaStates = Callable[[str], BucketState | None]


class RegistryConnector(Protocol):
    async def lookup(self, identifier: str) -> LookupResult: ...


class LookupPendingError(PartnerTransientError):
    """The registry cannot be asked before the caller's deadline (quota or open circuit)."""

    code = "registry_pending"


@dataclass(frozen=True)
class Quota:
    limit: int
    window_seconds: float


@dataclass(frozen=True)
class LookupAnswer:
    entry: CacheEntry
    from_cache: bool


def record_payload(record: RegistryRecord) -> dict[str, str]:
    """A record as the strings a Notification's ``details`` carries (absent: not set)."""
    address = record.address
    values = {
        "kind": record.kind.value,
        "siren": record.siren,
        "siret": record.siret,
        "name": record.name,
        "active": "true" if record.active else "false",
        "closed_on": record.closed_on.isoformat() if record.closed_on else None,
        "legal_category": record.legal_category,
        "naf": record.naf,
        "diffusion": record.diffusion.value,
        "head_office_siret": record.head_office_siret,
        "street": address.street if address else None,
        "postal_code": address.postal_code if address else None,
        "commune": address.commune if address else None,
        "commune_code": address.commune_code if address else None,
        "masked": ",".join(sorted(record.masked)) or None,
    }
    return {key: value for key, value in values.items() if value is not None}


@dataclass
class Slot:
    """When a number's call is due, and which request (the leader) is to make it."""

    due: float
    leader: str


@dataclass(frozen=True)
class Plan:
    """Park a look-up for ``wait`` seconds; a ``leader`` must come back by its slot (the
    others come back after it and find the answer in the cache)."""

    wait: float
    leader: bool


SWEEP_EVERY = 600.0
"""Seconds between two sweeps of the cache's expired entries by a registry's owner."""

SWEEP_MAX_KEYS = 5000
"""Tombstones one sweep writes at most (the rest wait for the next sweep), so a sweep in
a rebalance callback or before a look-up stays short."""

SLOT_GRACE = 120.0
"""A slot whose leader has not called this long after it is due is given to another
request (the leader was dead-lettered, or its worker lost the partition)."""


class _Gate:
    """One registry's quota bucket, breaker, queue of waiters and schedule of slots."""

    def __init__(self, quota: Quota, now: float, breaker: CircuitBreaker) -> None:
        self.bucket = TokenBucket.for_quota(quota.limit, quota.window_seconds, now)
        self.breaker = breaker
        self.queue = asyncio.Lock()
        self.next_slot = now
        self.slots: dict[str, Slot] = {}

    def slot(self, number: str, request: str, now: float) -> Slot:
        """The number's slot: its existing one, else the next free one (slots are spaced
        at the bucket's rate, so the bucket has a token when a slot is due)."""
        current = self.slots.get(number)
        if current is not None and now <= current.due + SLOT_GRACE:
            return current
        slot = Slot(max(now, self.next_slot), request)
        self.next_slot = slot.due + 1.0 / self.bucket.rate
        self.slots[number] = slot
        return slot

    def take_over(self, state: BucketState | None, now: float) -> None:
        """A new ownership: an empty bucket blocked as the last owner said, and a new
        schedule (the last owner's slots are unknown here; its parked leaders get new
        ones when they come back)."""
        self.bucket = TokenBucket.taken_over(self.bucket, state, now)
        self.next_slot = max(now, self.bucket.blocked_until)
        self.slots.clear()


class LookupService:
    def __init__(
        self,
        connectors: Mapping[str, RegistryConnector],
        quotas: Mapping[str, Quota],
        cache: RegistryCache,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        publish: Publish | None = None,
        policy: CachePolicy | None = None,
        max_wait: float = 600.0,
        breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        quota_state: QuotaStates | None = None,
        publish_quota: PublishQuota | None = None,
        publish_tombstones: PublishTombstones | None = None,
    ) -> None:
        self.connectors = dict(connectors)
        self.cache = cache
        self.clock = clock
        self.sleep = sleep
        self.publish = publish
        self.policy = policy or CachePolicy()
        self.max_wait = max_wait
        now = clock()
        self.gates = {name: _Gate(quotas[name], now, breaker()) for name in self.connectors}
        self.flight: SingleFlight[CacheEntry] = SingleFlight()
        self.calls = 0
        self.quota_state = quota_state
        self.publish_quota = publish_quota
        self.publish_tombstones = publish_tombstones
        self.owned: set[str] = set()
        self.tracking = False  # True once told what it owns: then it calls only those
        self.last_sweep = float("-inf")

    def assigned(self, registries: set[str]) -> None:
        """This worker now holds the partitions of ``registries`` and no other (none while
        a rebalance runs): it calls no other registry from now on (a call waiting in line
        for one it lost gives up, :class:`LookupPendingError`), and every one it holds is
        taken over again (:meth:`take_over`)."""
        self.tracking = True
        self.owned = {name for name in registries if name in self.gates}
        for name in sorted(self.owned):
            self.take_over(name)

    async def sweep(self, *, force: bool = False) -> int:
        """Tombstones on the cache topic for the expired entries of the registries this
        worker owns (their only writer, so a tombstone never follows a fresher answer of
        its own), at most every :data:`SWEEP_EVERY` seconds unless ``force``; how many."""
        now = self.clock()
        if self.publish_tombstones is None or not self.owned:
            return 0
        if not force and now - self.last_sweep < SWEEP_EVERY:
            return 0
        self.last_sweep = now
        keys = [key for key in self.cache.expired(now)
                if key.split(":", 1)[0] in self.owned][:SWEEP_MAX_KEYS]
        if not keys:
            return 0
        try:
            await self.publish_tombstones(keys)
        except Exception as exc:  # still expired here: the next sweep tries them again
            log.warning("registries.cache_sweep_failed", keys=len(keys),
                        error=f"{type(exc).__name__}: {exc}")
            return 0
        for key in keys:  # the view drops them too when the tombstones come back
            self.cache.apply(key, None)
        log.info("registries.cache_swept", registries=sorted(self.owned), tombstones=len(keys))
        return len(keys)

    def take_over(self, registry: str) -> BucketState | None:
        """This worker now owns ``registry``'s partition: its gate restarts from the state
        the last owner published (None when none was, or the registry is not configured
        here). Called on every assignment, so a partition that came back to this worker
        after another owner had it never trusts the tokens it held before."""
        gate = self.gates.get(registry)
        if gate is None:
            return None
        state = self.quota_state(registry) if self.quota_state is not None else None
        gate.take_over(state, self.clock())
        log.info("registries.quota_taken_over", registry=registry,
                 blocked_for=round(max(gate.bucket.blocked_until - self.clock(), 0.0), 1))
        return state

    def observe_quota(self, registry: str, state: BucketState) -> None:
        """A block published on ``relais.registry.quota`` (by this worker or the last
        owner, read after the take-over): honoured on top of the local one."""
        gate = self.gates.get(registry)
        if gate is not None:
            gate.bucket.observe(state)

    async def lookup(
        self, registry: str, identifier: str, *, deadline: float | None = None
    ) -> LookupAnswer:
        """The answer for ``identifier`` (SIREN or SIRET, typed spaces allowed).

        ``deadline`` (clock time) shortens ``max_wait``: a call that could not start by then
        raises :class:`LookupPendingError`. ValueError for an invalid number or an unknown
        registry (never sent anywhere).
        """
        number = normalize_identifier(identifier)
        if identifier_kind(number) is None:
            raise ValueError(f"not a valid SIREN or SIRET: {identifier!r}")
        if registry not in self.connectors:
            raise ValueError(f"unknown registry {registry!r}")
        cached = self.cache.get(registry, number, self.clock())
        if cached is not None:
            return LookupAnswer(cached, from_cache=True)
        entry = await self.flight.run(
            f"{registry}:{number}", lambda: self._fetch(registry, number, deadline)
        )
        return LookupAnswer(entry, from_cache=False)

    def plan(self, registry: str, identifier: str, request: str,
             wait_limit: float | None = None) -> Plan | None:
        """Whether a look-up should be parked rather than wait in line (None: go on now).

        Every number that needs a call gets a slot, spaced at the registry's rate; a
        look-up whose number is cached, or whose slot is due within ``wait_limit`` (default
        ``max_wait``), goes on; any other is parked until its slot: the request holding
        the slot (the leader) to be back by then, the others to come back after it.
        Thousands of look-ups for hundreds of numbers thus wait on the delay tiers, each
        parked about once, instead of circling (docs/registries.md).
        """
        number = normalize_identifier(identifier)
        gate = self.gates.get(registry)
        now = self.clock()
        if gate is None or self.cache.get(registry, number, now) is not None:
            return None
        slot = gate.slot(number, request, now)
        wait = slot.due - now
        if wait <= (self.max_wait if wait_limit is None else wait_limit):
            return None
        return Plan(wait, leader=slot.leader == request)

    def spacing(self, registry: str) -> float:
        """Seconds between two slots of ``registry`` (one token of its bucket)."""
        gate = self.gates.get(registry)
        return 1.0 / gate.bucket.rate if gate is not None else 0.0

    def called(self, registry: str, number: str) -> None:
        """The number's call is done (answered and cached): its slot is free."""
        gate = self.gates.get(registry)
        if gate is not None:
            gate.slots.pop(number, None)

    async def _fetch(self, registry: str, number: str, until: float | None) -> CacheEntry:
        gate = self.gates[registry]
        deadline = self.clock() + self.max_wait
        if until is not None:
            deadline = min(deadline, until)
        while True:
            cached = self.cache.get(registry, number, self.clock())
            if cached is not None:  # filled while this call waited
                return cached
            async with gate.queue:
                await self._wait_turn(registry, gate, deadline)
            self.calls += 1
            try:
                result = await self.connectors[registry].lookup(number)
            except RegistryQuotaError as exc:
                retry = exc.retry_after if exc.retry_after is not None else 60.0
                gate.bucket.penalize(retry, self.clock())
                log.warning("registries.quota_exceeded", registry=registry, retry_after=retry)
                await self._publish_quota(registry, gate.bucket.state())
                continue
            except RegistryNotDiffusibleError:
                gate.breaker.success()
                return await self._store(registry, number, Outcome.NOT_DIFFUSIBLE, None, {})
            except PartnerTransientError:
                gate.breaker.failure(self.clock())
                raise
            except Exception:
                gate.breaker.success()  # it answered (auth, bad request…): it is up
                raise
            gate.breaker.success()
            if isinstance(result, NotFound):
                return await self._store(registry, number, Outcome.NOT_FOUND, None, {})
            return await self._store(
                registry, number, Outcome.FOUND, result.active, record_payload(result)
            )

    async def _publish_quota(self, registry: str, state: BucketState) -> None:
        """The block for the next owner; a failure to publish is logged, not raised (this
        owner honours its block either way)."""
        if self.publish_quota is None:
            return
        try:
            await self.publish_quota(registry, state)
        except Exception as exc:
            log.warning("registries.quota_publish_failed", registry=registry,
                        error=f"{type(exc).__name__}: {exc}")

    async def _wait_turn(self, registry: str, gate: _Gate, deadline: float) -> None:
        while True:
            now = self.clock()
            if self.tracking and registry not in self.owned:  # its partition was revoked
                raise LookupPendingError(
                    f"{registry}: this worker no longer owns the registry's partition",
                    partner=registry,
                    retry_after=max(self.spacing(registry), 1.0),
                )
            if gate.breaker.state(now) is BreakerState.OPEN:
                wait = gate.breaker.allow(now)
            else:
                wait = gate.bucket.take(now)
                if wait <= 0:
                    wait = gate.breaker.allow(now)  # half-open: one probe at a time
                    if wait <= 0:
                        return
            if now + wait > deadline:
                raise LookupPendingError(
                    f"{registry}: no call possible for {wait:.0f} s (quota or open circuit)",
                    partner=registry,
                    retry_after=wait,
                )
            await self.sleep(wait)

    async def _store(
        self,
        registry: str,
        number: str,
        outcome: Outcome,
        active: bool | None,
        payload: dict[str, str],
    ) -> CacheEntry:
        entry = make_entry(
            registry,
            number,
            outcome,
            self.clock(),
            active=active,
            payload=payload,
            policy=self.policy,
        )
        self.cache.put(entry)
        self.called(registry, number)
        if self.publish is not None:
            await self.publish(entry)
        log.info("registries.lookup_answered", registry=registry, outcome=outcome.value)
        return entry
