"""A misbehaving TdT: 5xx answers, calls that time out after the TdT did the work,
duplicated and reordered answers and prefecture messages. Every acte still ends
acknowledged, is posted once (timeouts are reconciled, never re-posted), and each
member hears of each transition and each prefecture message once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from ops.kafka.broker import LocalBroker
from tests.faults.conftest import (
    TERMINAL,
    FaultHub,
    drafts,
    flow_of,
    interleaved,
    log_count,
    notifications,
    publish_drafts,
    sandbox_stats,
    start_fault_hub,
    wait_for_states,
)

pytestmark = pytest.mark.faults

MEMBERS = 10
ACTES_PER_MEMBER = 30
FAULTS = {
    "error_rate": 0.3, "timeout_rate": 0.1, "hang_seconds": 4, "duplicate_rate": 0.2,
    "out_of_order": 0.3, "anomaly_rate": 0.0, "prefecture_message_rate": 0.2,
}
ENV = {
    # A retried delivery needs two calls to go through (the listing that reconciles, then
    # the post): about 0.63 ** 2 = 0.4 of attempts succeed. With 12 retries 0.6 ** 13 of
    # the actes (0.4 of 300) would be dead-lettered by bad luck alone; with 24, 0.6 ** 25.
    "RELAIS_RETRY_TIERS": ",".join(["5s"] * 24),
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "2",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}


@pytest.fixture(scope="module")
def hub(fault_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultHub]:
    running = start_fault_hub(fault_broker, tmp_path_factory, prefix="32", members=MEMBERS,
                              env=ENV, faults=FAULTS, seed=32)
    try:
        yield running
    finally:
        running.close()


def _key(note: dict[str, object]) -> tuple[str, str, str, str]:
    details = note["details"]
    assert isinstance(details, dict)
    return (str(note["flow_id"]), str(note["kind"]), str(note["state"]),
            str(details.get("child_event", "")))


def _prefecture_message(note: dict[str, Any]) -> bool:
    """A prefecture message (2-1…5-1), not the stamped acte, also a PARTNER_MESSAGE."""
    return note["kind"] == "PARTNER_MESSAGE" and "type_code" in note["details"]


async def test_partner_faults(hub: FaultHub) -> None:
    items = interleaved([drafts(s, hub.blob, ACTES_PER_MEMBER, tag="P") for s in hub.sirens])
    expected = {flow_of(d): d.member_siren for d in items}
    started = time.monotonic()
    await publish_drafts(hub.bootstrap, items)

    def settled(states: dict[str, str], dead: set[str]) -> bool:
        return all(states.get(f) in TERMINAL or f in dead for f in expected)

    # A bound, not a goal: reconciliations now list S²LOW's states (up to 16 listings, each
    # under the same fault rates); runs here settle in about 230 s.
    states, dead = await wait_for_states(hub.bootstrap, expected, settled, timeout=420, every=3,
                                         dead_lettered=True, stalled_after=120)
    acknowledged_after = time.monotonic() - started
    outcome = Counter(states.get(f, "none") for f in expected)
    assert not dead & set(expected), f"{len(dead & set(expected))} actes dead-lettered"
    assert outcome == {"acknowledged": len(expected)}, outcome

    # Prefecture messages come up to 3 s (sandbox clock) after the acknowledgement; wait
    # until each member has heard of each message the TdT produced for it.
    per_member: dict[str, list[dict[str, object]]] = {}
    stats: dict[str, object] = {}
    deadline = time.monotonic() + 90
    while True:
        stats = await sandbox_stats(hub)
        accounts = stats["members"]
        assert isinstance(accounts, dict)
        per_member = {s: await notifications(hub.bootstrap, s) for s in hub.sirens}
        heard = {s: len({n["event_id"] for n in notes if _prefecture_message(n)})
                 for s, notes in per_member.items()}
        produced = {s: accounts[s]["prefecture_documents"] for s in hub.sirens}
        if (heard == produced and time.monotonic() - started > acknowledged_after + 8) \
                or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    elapsed = time.monotonic() - started
    faults = stats["faults"]
    log = hub.worker_log()
    print(f"\npartner faults: {len(expected)} flows all acknowledged after "
          f"{acknowledged_after:.1f} s, messages settled after {elapsed:.1f} s; posts received "
          f"{stats['posts_received']}, transactions {stats['transactions_created']}, "
          f"duplicates {stats['duplicate_posts']}, listings (list_actes.php) "
          f"{stats['listings']}, reconciled {log_count(log, 'acts.reconciled')}, "
          f"retries {log_count(log, 'stage.retry_scheduled')}, prefecture messages "
          f"{stats['prefecture_documents']}; faults {faults}")
    assert stats["transactions_created"] == len(expected)
    assert stats["duplicate_posts"] == 0
    assert stats["rejected_posts"] == 0
    assert isinstance(faults, dict)
    assert faults.get("timeout", 0) > 0 and faults.get("error", 0) > 0, faults

    for siren, notes in per_member.items():
        mine = {flow for flow, owner in expected.items() if owner == siren}
        assert {n["member_siren"] for n in notes} == {siren}
        assert {n["flow_id"] for n in notes} == mine
        event_ids: dict[tuple[str, str, str, str], set[object]] = defaultdict(set)
        for note in notes:
            event_ids[_key(note)].add(note["event_id"])
        assert all(len(ids) == 1 for ids in event_ids.values()), \
            "a transition or a message was told twice under two event ids"
        acknowledged = Counter(f for (f, kind, state, child) in event_ids
                               if kind == "STATE_CHANGED" and state == "acknowledged")
        assert set(acknowledged) == mine and max(acknowledged.values()) == 1
        messages = Counter(n["event_id"] for n in notes if _prefecture_message(n))
        assert all(count == 1 for count in messages.values()), \
            f"a prefecture message was delivered twice: {messages.most_common(3)}"
        accounts = stats["members"]
        assert isinstance(accounts, dict)
        assert len(messages) == accounts[siren]["prefecture_documents"], siren
