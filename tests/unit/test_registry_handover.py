"""Handing a registry's quota bucket over to the partition's next owner.

The owner publishes its :class:`BucketState` on ``relais.registry.quota`` after a 429; a
worker assigned the registry's look-up partition restarts that registry's gate with
:meth:`TokenBucket.taken_over` from the last published state. Across the handover the calls
of both owners together stay within the quota in any rolling window, whatever the timing,
the 429 blocks and a skew between the two workers' clocks.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.registry.flow import RegistryFlowDeps, lookup_partition, on_lookups_assigned
from agents.registry.service import LookupPendingError, LookupService, Quota
from agents.registry.views import RegistryQuotaView
from connectors.registries.errors import RegistryQuotaError
from connectors.registries.models import NotFound, Registry
from relais.registry.bucket import BucketState, TokenBucket, state_from_json, state_to_json
from relais.registry.cache import RegistryCache
from relais.wire.avro_codec import AvroCodec
from tests.unit.quota_clock import admit, most_in_window
from topics.registry import REGISTRY_LOOKUPS, REGISTRY_QUOTA

LIMIT, WINDOW = 30, 60.0


@settings(max_examples=80, deadline=None)
@given(
    first=st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), max_size=120),
    second=st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), max_size=120),
    handover=st.floats(min_value=0, max_value=300, allow_nan=False),
    blocked=st.one_of(st.none(), st.tuples(st.floats(0, 300), st.floats(0, 120))),
    skew=st.floats(min_value=-5, max_value=0, allow_nan=False),
)
def test_two_owners_together_never_pass_the_quota(
    first: list[float], second: list[float], handover: float,
    blocked: tuple[float, float] | None, skew: float,
) -> None:
    old = TokenBucket.for_quota(LIMIT, WINDOW, 0.0, margin=0.0)
    if blocked is not None:  # a 429 somewhere before the handover
        at, retry = blocked
        before = admit(old, [a for a in first if a < min(at, handover)], until=min(at, handover))
        old.penalize(retry, min(at, handover))
        rest = [a for a in first if min(at, handover) <= a < handover]
        calls = before + admit(old, rest, until=handover)
    else:
        calls = admit(old, [a for a in first if a < handover], until=handover)
    # the new owner's clock may lag the old one's by up to 5 s (skew <= 0): it reads the
    # state the old owner published and counts from its own "now"
    state = old.state()
    new = TokenBucket.taken_over(old, state, handover + skew)
    later = admit(new, [max(a, handover) + skew for a in second])
    combined = calls + [t - skew for t in later]  # on the old owner's clock
    assert most_in_window(combined, WINDOW) <= LIMIT
    if blocked is not None:
        assert all(t - skew >= state.blocked_until - 1e-9 for t in later)


def test_a_new_owner_waits_out_the_last_call_of_an_owner_whose_clock_was_ahead() -> None:
    old = TokenBucket.for_quota(LIMIT, WINDOW, 0.0)
    assert old.take(100.0) == 0.0
    new = TokenBucket.taken_over(old, old.state(), 98.0)  # its clock is 2 s behind
    [first] = admit(new, [98.0])
    assert first == pytest.approx(100.0 + 1 / new.rate)


def test_a_state_travels_as_small_json_and_garbage_is_refused() -> None:
    state = BucketState(blocked_until=1_764_900_000.5, last_call=1_764_899_990.0)
    assert state_from_json(state_to_json(state)) == state
    assert state_from_json(b'{"blocked_until": 12}') == BucketState(12.0, 0.0)
    for garbage in (b"", b"[]", b'{"blocked_until": "soon"}', b'{"blocked_until": NaN}',
                    b'{"blocked_until": 1e400}', b"{" + b" " * 2000 + b"}"):
        with pytest.raises(ValueError):
            state_from_json(garbage)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class Registry429:
    """Answers 429 (Retry-After 40 s) to the first call, then "not found"."""

    def __init__(self) -> None:
        self.calls = 0

    async def lookup(self, identifier: str) -> NotFound:
        self.calls += 1
        if self.calls == 1:
            raise RegistryQuotaError("too many requests", partner="sirene", retry_after=40.0)
        return NotFound(Registry.SIRENE, identifier, "unknown")


async def test_a_429_is_published_and_the_next_owner_honours_it() -> None:
    clock = Clock()
    published: list[tuple[str, BucketState]] = []

    async def publish_quota(registry: str, state: BucketState) -> None:
        published.append((registry, state))

    owner = LookupService({"sirene": Registry429()}, {"sirene": Quota(LIMIT, WINDOW)},
                          RegistryCache(), clock=clock, sleep=clock.sleep, max_wait=600.0,
                          publish_quota=publish_quota)
    await owner.lookup("sirene", "212102313")
    [(registry, state)] = published
    assert registry == "sirene" and state.blocked_until == pytest.approx(1040.0)

    # a second worker reads the quota topic's view and is assigned Sirene's partition
    view = RegistryQuotaView("unused:9092")
    view.view.apply(b"sirene", state_to_json(state))
    heir = LookupService({"sirene": Registry429()}, {"sirene": Quota(LIMIT, WINDOW)},
                         RegistryCache(), clock=clock, sleep=clock.sleep, max_wait=10.0,
                         quota_state=view.get)
    clock.now = 1010.0
    assert heir.take_over("sirene") == state
    with pytest.raises(LookupPendingError) as pending:
        await heir.lookup("sirene", "217100072")
    assert pending.value.retry_after == pytest.approx(30.0)


async def test_each_assignment_starts_the_owned_registries_empty_and_only_those() -> None:
    clock = Clock()
    states: dict[str, BucketState] = {}
    service = LookupService({"sirene": Registry429(), "entreprise": Registry429()},
                            {"sirene": Quota(LIMIT, WINDOW), "entreprise": Quota(LIMIT, WINDOW)},
                            RegistryCache(), clock=clock, sleep=clock.sleep,
                            quota_state=states.get)
    sirene, entreprise = service.gates["sirene"], service.gates["entreprise"]
    assert sirene.bucket.take(clock.now) == 0.0  # a token it held before
    sirene.bucket.tokens = 1.0
    sirene.slots["212102313"] = sirene.slot("212102313", "req-1", clock.now + 50)
    assert lookup_partition("sirene") != lookup_partition("entreprise")

    def Deps() -> RegistryFlowDeps:
        return RegistryFlowDeps(codec=AvroCodec(), cache=service.cache, service=service)

    states["sirene"] = BucketState(blocked_until=clock.now + 20)
    await on_lookups_assigned(Deps(), {(REGISTRY_LOOKUPS.name, lookup_partition("sirene")),
                                       (REGISTRY_QUOTA.name, 0)})
    assert service.owned == {"sirene"}
    assert sirene.bucket.tokens == 0.0 and not sirene.slots
    assert sirene.bucket.take(clock.now) == pytest.approx(20.0)
    assert entreprise.bucket.take(clock.now) == 0.0  # not this worker's: left alone
    # a block the last owner published after the take-over is honoured too
    service.observe_quota("sirene", BucketState(blocked_until=clock.now + 45))
    assert sirene.bucket.take(clock.now) == pytest.approx(45.0)
    # the partition went away, then came back: the tokens of before are not trusted
    await on_lookups_assigned(Deps(), set())
    assert service.owned == set()
    clock.now += 500
    await on_lookups_assigned(Deps(), {(REGISTRY_LOOKUPS.name, lookup_partition("sirene"))})
    [first] = admit(sirene.bucket, [clock.now])
    assert first == pytest.approx(clock.now + 1 / sirene.bucket.rate)


def test_an_unreadable_quota_record_is_dropped_not_applied() -> None:
    view = RegistryQuotaView("unused:9092")
    seen: list[tuple[str, BucketState]] = []
    view.on_state = lambda registry, state: seen.append((registry, state))
    view.view.apply(b"sirene", b"not json")
    assert view.get("sirene") is None and not seen
    view.view.apply(b"sirene", state_to_json(BucketState(5.0)))
    assert view.get("sirene") == BucketState(5.0) and seen == [("sirene", BucketState(5.0))]
    view.view.apply(b"sirene", None)
    assert view.get("sirene") is None


async def test_a_call_waiting_in_line_gives_up_when_the_partition_is_revoked() -> None:
    clock = Clock()
    registry = Registry429()
    registry.calls = 1  # no 429: answers "not found"
    service = LookupService({"sirene": registry}, {"sirene": Quota(LIMIT, WINDOW)},
                            RegistryCache(), clock=clock, max_wait=600.0)

    async def sleep(seconds: float) -> None:  # a rebalance begins while it waits
        clock.now += seconds
        service.assigned(set())

    service.sleep = sleep
    service.assigned({"sirene"})  # taken over: empty, the first call waits one spacing
    with pytest.raises(LookupPendingError, match="no longer owns"):
        await service.lookup("sirene", "212102313")
    assert registry.calls == 1  # never called
    service.assigned({"sirene"})
    service.sleep = clock.sleep
    assert (await service.lookup("sirene", "212102313")).entry.outcome.value == "not_found"
