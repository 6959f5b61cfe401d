"""The worker is SIGKILLed at random moments while 2,000 actes flow, and restarted each
time: no acte is lost (each ends acknowledged or rejected, or in a dead-letter topic)
and the TdT receives each acte exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest

from ops.kafka.broker import LocalBroker
from tests.faults.conftest import (
    INTERNAL_TOPICS,
    STEADY_ENV,
    TERMINAL,
    FaultHub,
    drafts,
    flow_of,
    interleaved,
    log_count,
    module_fault_hub,
    notifications,
    open_transactions,
    publish_drafts,
    sandbox_stats,
    wait_for_states,
)

pytestmark = pytest.mark.faults

MEMBERS = 20
ACTES_PER_MEMBER = 100
SEED = 20260


@pytest.fixture(scope="module")
def hub(fault_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultHub]:
    yield from module_fault_hub(fault_broker, tmp_path_factory, prefix="30",
                                members=MEMBERS, env=STEADY_ENV)


async def test_worker_killed_while_actes_flow(hub: FaultHub) -> None:
    rng = random.Random(SEED)
    per_member = [drafts(siren, hub.blob, ACTES_PER_MEMBER, tag="K") for siren in hub.sirens]
    items = interleaved(per_member)
    expected = {flow_of(d): d.member_siren for d in items}
    assert len(expected) == MEMBERS * ACTES_PER_MEMBER

    started = time.monotonic()
    publishing = asyncio.create_task(publish_drafts(hub.bootstrap, items))
    kills, restarts, restart_seconds = 0, 0, []
    for _ in range(rng.randint(3, 4)):
        await asyncio.sleep(rng.uniform(3, 10))
        worker = hub.stack.processes["worker"]
        assert worker.running(), "the worker died on its own"
        await asyncio.to_thread(worker.kill)
        kills += 1
        print(f"  kill {kills} at {time.monotonic() - started:.1f} s")
        restart_seconds.append(await asyncio.to_thread(hub.start_worker))
        restarts += 1
    await publishing
    published = time.monotonic() - started

    def settled(states: dict[str, str], dead: set[str]) -> bool:
        return all(states.get(f) in TERMINAL or f in dead for f in expected)

    states, dead = await wait_for_states(hub.bootstrap, expected, settled, timeout=360,
                                         every=3, dead_lettered=True, stalled_after=90)
    elapsed = time.monotonic() - started
    outcome = Counter(states.get(f, "none") for f in expected)
    lost = [f for f in expected if states.get(f) not in TERMINAL and f not in dead]
    stats = await sandbox_stats(hub)
    print(f"\nworker killed: {len(expected)} flows, {kills} kills, {restarts} restarts "
          f"(restart {', '.join(f'{s:.1f}' for s in restart_seconds)} s), "
          f"lost {len(lost)}, dead-lettered {len(dead & set(expected))}, "
          f"duplicates {stats['duplicate_posts']}, listings (list_actes.php) "
          f"{stats['listings']}, reconciled "
          f"{log_count(hub.worker_log(), 'acts.reconciled')}, published in {published:.1f} s, "
          f"all settled after {elapsed:.1f} s; states {dict(outcome)}")
    if lost:
        print("  partitions held by an open transaction:",
              await open_transactions(hub.bootstrap, INTERNAL_TOPICS))
        print("  'link not visible' retries:", log_count(hub.worker_log(), "is not visible yet"))
    assert kills == restarts >= 3
    assert not lost, f"{len(lost)} flows lost: {Counter(states.get(f) for f in lost)}"
    assert not dead & set(expected), "no acte should need a dead letter: the partner was fine"
    assert outcome == {"acknowledged": len(expected)}, outcome
    assert stats["transactions_created"] == len(expected)
    assert stats["duplicate_posts"] == 0
    assert stats["rejected_posts"] == 0

    for siren in hub.sirens:
        notes = await notifications(hub.bootstrap, siren)
        mine = {flow for flow, owner in expected.items() if owner == siren}
        assert {n["member_siren"] for n in notes} == {siren}
        assert {n["flow_id"] for n in notes} == mine
        ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for note in notes:
            ids[(note["flow_id"], note["kind"], note["state"])].add(note["event_id"])
        assert all(len(v) == 1 for v in ids.values()), "one transition, two event ids"
        acknowledged = {f for (f, kind, state) in ids if state == "acknowledged"
                        and kind == "STATE_CHANGED"}
        assert acknowledged == mine
