"""A partner outage fills the dead-letter topics; once the partner is back, one audited
replay brings every acte home, a second replay sends nothing twice, and a dry run
changes nothing. The operator CLI reports the dead letters and the stages' health."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from hub.flows import FLOWS
from ops.audit import read_audit
from ops.dlq import DeadLetterFilter, hub_stages
from ops.kafka.broker import LocalBroker
from ops.replay import replay
from relais.kafka.security import security_for
from tests.faults.conftest import (
    FaultHub,
    dead_letters,
    drafts,
    end_offsets,
    flow_of,
    interleaved,
    log_count,
    publish_drafts,
    sandbox_stats,
    set_faults,
    start_fault_hub,
    wait_for_states,
)
from topics.acts import ACTS_DELIVERY, ACTS_SUBMITTED
from topics.catalogue import OPS_AUDIT

STAGES = hub_stages(FLOWS)

pytestmark = pytest.mark.faults

MEMBERS = 4
ACTES_PER_MEMBER = 10
ENV = {
    "RELAIS_RETRY_TIERS": "5s",  # one retry, then the dead letter
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "2",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hub(fault_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultHub]:
    running = start_fault_hub(fault_broker, tmp_path_factory, prefix="34", members=MEMBERS,
                              env=ENV)
    try:
        yield running
    finally:
        running.close()


def _cli(hub: FaultHub, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RELAIS_KAFKA_BOOTSTRAP": hub.bootstrap,
           "RELAIS_APP_ID": hub.settings.app_id, "RELAIS_DATA_DIR": str(hub.settings.data_dir),
           "RELAIS_LOG_FORMAT": "console", **security_for(hub.bootstrap).as_env()}
    return subprocess.run([sys.executable, "-m", "hub.cli.main", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_replay_after_partner_outage(hub: FaultHub) -> None:
    started = time.monotonic()
    # The first two members' classifications are fetched before the outage (an acte
    # dated in the future is refused after the fetch, without reaching the TdT): their
    # actes fail in acts-delivery. The other two fail in acts-validation, which must
    # fetch the classification from the TdT that is down.
    warm = [replace(drafts(s, hub.blob, 1, tag="Z")[0],
                    decision_date=date.today() + timedelta(days=30)) for s in hub.sirens[:2]]
    await publish_drafts(hub.bootstrap, warm)
    warmed, _ = await wait_for_states(
        hub.bootstrap, {flow_of(d) for d in warm},
        lambda s, _: len(s) == 2 and set(s.values()) == {"rejected"}, timeout=60, every=0.5)
    assert set(warmed.values()) == {"rejected"}, warmed

    await set_faults(hub, error_rate=1.0)
    items = interleaved([drafts(s, hub.blob, ACTES_PER_MEMBER, tag="R") for s in hub.sirens])
    expected = {flow_of(d): d.member_siren for d in items}
    n = len(expected)
    await publish_drafts(hub.bootstrap, items)
    states, _ = await wait_for_states(
        hub.bootstrap, expected, lambda s, _: len(s) == n and set(s.values()) == {"failed"},
        timeout=90, every=1)
    outage = time.monotonic() - started
    assert Counter(states.values()) == {"failed": n}, Counter(states.values())
    letters = await dead_letters(hub.bootstrap)
    by_stage = Counter(letter.stage for letter in letters)
    assert {letter.flow_id for letter in letters} == set(expected)
    assert by_stage == {"acts-delivery": 2 * ACTES_PER_MEMBER,
                        "acts-validation": 2 * ACTES_PER_MEMBER}, by_stage
    assert all(letter.header("relais_attempt") == "2" for letter in letters)
    assert (await sandbox_stats(hub))["transactions_created"] == 0

    # A dry run plans every dead letter and changes nothing.
    watched = [ACTS_SUBMITTED.name, ACTS_DELIVERY.name, OPS_AUDIT.name]
    offsets_before = await end_offsets(hub.bootstrap, watched)
    audit_before = await read_audit(hub.bootstrap)
    dry = await replay(hub.bootstrap, DeadLetterFilter(STAGES), operator="test", reason="dry",
                       dry_run=True, rate=200)
    assert (dry.matched, dry.replayed, len(dry.planned), dry.refused) == (n, 0, n, {})
    assert {letter.ref for letter in dry.planned} == {letter.ref for letter in letters}
    assert await end_offsets(hub.bootstrap, watched) == offsets_before
    assert await read_audit(hub.bootstrap) == audit_before

    # The partner is back: one replay, and every acte ends acknowledged, posted once.
    await set_faults(hub, error_rate=0.0)
    replay_started = time.monotonic()
    report = await replay(hub.bootstrap, DeadLetterFilter(STAGES), operator="test",
                          reason="partner back", rate=200)
    assert (report.matched, report.replayed, report.refused) == (n, len(letters), {})
    states, _ = await wait_for_states(
        hub.bootstrap, expected, lambda s, _: set(s.values()) == {"acknowledged"},
        timeout=120, every=1)
    recovered = time.monotonic() - replay_started
    assert Counter(states.values()) == {"acknowledged": n}, Counter(states.values())
    stats = await sandbox_stats(hub)
    assert stats["transactions_created"] == n
    assert stats["duplicate_posts"] == 0

    # Replaying again sends nothing: the audit journal knows every one of them.
    again = await replay(hub.bootstrap, DeadLetterFilter(STAGES), operator="test",
                         reason="partner back", rate=200)
    assert (again.replayed, again.refused) == (0, {"already replayed": n})
    entries = [e for e in await read_audit(hub.bootstrap) if e["action"] == "replay"]
    assert len(entries) == n
    assert {(e["operator"], e["reason"], e["run_id"]) for e in entries} == {
        ("test", "partner back", report.run_id)}
    assert {f"{e['source_topic']}:{e['source_partition']}:{e['source_offset']}"
            for e in entries} == {letter.ref for letter in letters}
    assert {e["flow_id"] for e in entries} == set(expected)
    assert {e["target_topic"] for e in entries} == {ACTS_SUBMITTED.name, ACTS_DELIVERY.name}

    # The operator CLI sees the same.
    dlq = _cli(hub, "dlq", "stats")
    assert dlq.returncode == 0, dlq.stderr
    for stage in ("acts-delivery", "acts-validation"):
        assert stage in dlq.stdout, dlq.stdout
    assert f"{n} dead letters" in dlq.stdout, dlq.stdout
    health = _cli(hub, "health")
    assert health.returncode == 0, health.stdout + health.stderr
    for stage in hub_stages(FLOWS):
        assert stage in health.stdout, health.stdout
    assert "healthy" in health.stdout
    elapsed = time.monotonic() - started
    print(f"\nreplay: {n} flows, {len(letters)} dead letters ({dict(by_stage)}) after "
          f"{outage:.1f} s of outage; dry run planned {len(dry.planned)}; replayed "
          f"{report.replayed}, all acknowledged {recovered:.1f} s after the replay; second "
          f"replay refused {again.refused}; {len(entries)} audit entries; transactions "
          f"{stats['transactions_created']}, duplicates {stats['duplicate_posts']}, "
          f"reconciled {log_count(hub.worker_log(), 'acts.reconciled')}; total {elapsed:.1f} s")
    print("  relais dlq stats:\n    " + dlq.stdout.strip().replace("\n", "\n    "))
    print("  relais health:\n    " + health.stdout.strip().replace("\n", "\n    "))
