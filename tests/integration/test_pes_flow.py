"""PES files to Hélios, end to end, on the real broker with the sandbox TdT's Hélios pages:
PES_Aller from 10 members (80 by default, 500 with ``RELAIS_TEST_PES_FILES_PER_MEMBER=50``)
under the fault suite's TdT faults (5xx answers, calls that time out after S²LOW recorded
the import), with the sandbox comptable rejecting 10 % of the files, rejecting one
bordereau of another 10 % and answering 20 % of the status polls and PES_Retour listings
twice. Every file ends in exactly one terminal state, the one the comptable gave it; each
member hears only of its own files; S²LOW records each file once. A signed file whose body
was changed after signing is refused before it reaches the TdT."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from ops.demo_pes import PesHeader, pes_aller, publish_pes
from ops.flows import FlowFilter
from ops.members import Registration
from ops.stack import Stack, sandbox_config, sandbox_control_client, sandbox_member, sandbox_url
from relais.blobs.filesystem import FilesystemBlobStore
from relais.settings import Settings
from tests.integration import stacks
from tests.unit.test_pes_checks import signed_whole_file

pytestmark = pytest.mark.integration

MEMBERS = 10
FILES_PER_MEMBER = int(os.environ.get("RELAIS_TEST_PES_FILES_PER_MEMBER", "8"))
"""8 by default (80 files, keeping CI within its budget); the issue's full run
is ``RELAIS_TEST_PES_FILES_PER_MEMBER=50`` (500 files)."""
SIGNING_MEMBERS = 3
"""The first members' TdT accounts say ``pes_signature_required=true``: their files are signed."""
TERMINAL = {"acknowledged", "partially-accepted", "rejected", "uncertain", "failed"}
TDT_FAULTS = {"error_rate": 0.3, "timeout_rate": 0.1, "hang_seconds": 4}
"""The fault suite's TdT transport faults (tests/faults/test_partner_faults.py)."""
SETTLE_SECONDS = 300
"""The wait for every file to end, besides 1.2 s a file. Usually 120-175 s in all, but one
file whose first import fails ambiguously early (a 503 or a hang) has its delivery walk
every Hélios id created since, all ten members' imports, under the same faults, cut short
and resumed on the 5 s retry tier: in one CI run at load such a file was still at its 11th
attempt when a 216 s wait ended (all 79 others acknowledged)."""
HELIOS_KNOBS = {"ko_rate": 0.1, "partial_rate": 0.1, "duplicate_rate": 0.2, "retour_rate": 0.1}
ENV = {
    # as the fault suite: a delivery under 30 % errors may need many attempts
    "RELAIS_RETRY_TIERS": ",".join(["5s"] * 24),
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "2",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}


@pytest.fixture(scope="module")
def pes_stack(
    hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[Registration]]]:
    settings = stacks.stack_settings(hub_kafka_bootstrap, tmp_path_factory.mktemp("pes"), "pes",
                                     sandbox_block=4)
    registrations = [
        sandbox_member(settings, siren, f"Commune {i}", "025", tdt_options=(
            {"pes_signature_required": "true"} if i < SIGNING_MEMBERS else None))
        for i, siren in enumerate(stacks.sirens(MEMBERS, prefix="25"))
    ]
    with stacks.running_stack(settings, registrations,
                              sandbox_config(registrations, faults=TDT_FAULTS, seed=25),
                              extra_env=ENV) as stack:
        yield stack, registrations


def _file(siren: str, index: int, signed: bool) -> bytes:
    raw = pes_aller(PesHeader(siren), f"PES{siren}N{index:04d}", bordereaux=2,
                    first_number=10 + 2 * index)
    return signed_whole_file(unsigned=raw) if signed else raw


async def _helios_stats(settings: Settings) -> dict[str, Any]:
    return await stacks.tdt_stats(settings, "/sandbox/helios/stats")


async def _publish_files(
    settings: Settings, registrations: list[Registration]
) -> dict[str, str]:
    """Every member's files uploaded and submitted; flow id → member SIREN."""
    store = FilesystemBlobStore(settings.blob_dir)
    expected: dict[str, str] = {}
    async with stacks.publishing(settings) as publisher:
        for index in range(FILES_PER_MEMBER):  # members interleaved, as real traffic
            for number, registration in enumerate(registrations):
                siren = registration.member.siren
                raw = _file(siren, index, signed=number < SIGNING_MEMBERS)
                blob = await store.put_bytes(raw, media_type="application/xml",
                                             filename=f"pes-{index}.xml", owner=siren)
                flow_id = await publish_pes(publisher, siren, f"pes-{index}", blob)
                expected[flow_id] = siren
    return expected


async def test_pes_files_from_ten_members_under_tdt_faults(
    pes_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = pes_stack
    settings = stack.settings
    async with sandbox_control_client(settings) as client:
        answer = await client.post(f"{sandbox_url(settings)}/sandbox/helios/knobs",
                                   json=HELIOS_KNOBS)
        assert answer.status_code == 200, answer.text
    started = time.monotonic()
    expected = await _publish_files(settings, registrations)
    assert len(expected) == MEMBERS * FILES_PER_MEMBER

    states = await stacks.wait_for_states(
        settings, FlowFilter(flow_type="pes"), stacks.settled_in(expected, TERMINAL),
        timeout=SETTLE_SECONDS + 1.2 * len(expected), every=3, flows=expected)
    elapsed = time.monotonic() - started
    outcome = Counter(states.values())
    helios = await _helios_stats(settings)
    print(f"\n{len(expected)} PES files: all terminal after {elapsed:.1f} s; hub {dict(outcome)};"
          f" sandbox {helios['outcomes']}, imports received {helios['imports_received']}, "
          f"transactions {helios['transactions']}, retours {helios['retours']}")
    unsettled = {flow: states.get(flow, "no state") for flow in expected
                 if states.get(flow) not in TERMINAL}
    assert not unsettled, f"not terminal after {elapsed:.0f} s: {unsettled}"
    # the comptable's verdict is the flow's: S²LOW's -1 never happens to these files
    assert {k: v for k, v in outcome.items()} == helios["outcomes"], (outcome, helios)
    assert outcome["acknowledged"] and outcome["partially-accepted"] and outcome["rejected"]

    # exactly once at the TdT: one transaction per file, per member, no second import
    assert helios["transactions"] == len(expected)
    assert helios["duplicate_imports"] == 0
    assert helios["transactions_by_login"] == {r.member.siren: FILES_PER_MEMBER
                                               for r in registrations}
    tdt = await stacks.tdt_stats(settings)
    assert tdt["faults"].get("error", 0) > 0 and tdt["faults"].get("timeout", 0) > 0, tdt

    for registration in registrations:
        siren = registration.member.siren
        notes = await stacks.notifications(settings.bootstrap_servers, siren)
        mine = {flow for flow, owner in expected.items() if owner == siren}
        assert {n["member_siren"] for n in notes} == {siren}
        pes_notes = [n for n in notes if n["flow_type"] == "pes"]
        assert {n["flow_id"] for n in pes_notes} == mine
        assert {n["flow_type"] for n in notes} <= {"pes", "pes-retour"}
        assert max(Counter(n["event_id"] for n in notes).values()) == 1
        finals = Counter(n["flow_id"] for n in pes_notes if n["state"] in TERMINAL
                         and n["kind"] in ("STATE_CHANGED", "REJECTED", "FAILED"))
        assert set(finals) == mine and max(finals.values()) == 1, finals
        for note in pes_notes:
            if note["state"] == "partially-accepted":
                assert any(r["field"].startswith("ElementACQUIT[2]") for r in note["reasons"])
                assert all(r["message"][:5] == "1971 " for r in note["reasons"]), note
        retours = [n for n in notes if n["flow_type"] == "pes-retour"]
        assert Counter(n["flow_id"] for n in retours if n["kind"] == "PARTNER_MESSAGE") \
            == Counter({n["flow_id"]: 1 for n in retours if n["kind"] == "PARTNER_MESSAGE"})


async def test_a_tampered_signed_file_is_refused_before_sending(
    pes_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = pes_stack
    settings = stack.settings
    siren = registrations[0].member.siren  # its account requires signed files
    signed = _file(siren, 900, signed=True)
    tampered = signed.replace(b'<MtHT V="', b'<MtHT V="9', 1)
    assert tampered != signed
    before = await _helios_stats(settings)
    store = FilesystemBlobStore(settings.blob_dir)
    blob = await store.put_bytes(tampered, media_type="application/xml",
                                 filename="tampered.xml", owner=siren)
    async with stacks.publishing(settings) as publisher:
        flow_id = await publish_pes(publisher, siren, "pes-tampered", blob)
    refusal = await stacks.wait_for_refusal(settings, siren, flow_id, timeout=60, every=1)
    assert refusal is not None, "the tampered file was never refused"
    assert refusal["state"] == "rejected"
    codes = {r["code"] for r in refusal["reasons"]}
    assert codes == {"pes_signature_tampered"}, refusal["reasons"]
    assert all(r["field"].startswith("pes_aller.") for r in refusal["reasons"])
    after = await _helios_stats(settings)
    assert after["imports_received"] == before["imports_received"]
    assert after["transactions"] == before["transactions"]
