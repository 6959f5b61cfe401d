"""PES files to Hélios, end to end, on the real broker with the sandbox TdT's Hélios pages:
PES_Aller from 10 members (80 by default, 500 with ``RELAIS_TEST_PES_FILES_PER_MEMBER=50``)
under the fault suite's TdT faults (5xx answers, calls that time out after S²LOW recorded
the import), with the sandbox comptable rejecting 10 % of the files, rejecting one
bordereau of another 10 % and answering 20 % of the status polls and PES_Retour listings
twice. Every file ends in exactly one terminal state, the one the comptable gave it; each
member hears only of its own files; S²LOW records each file once. A signed file whose body
was changed after signing is refused before it reaches the TdT."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import TopicPartition

from ops.demo_pes import PesHeader, pes_aller, publish_pes
from ops.flows import FlowFilter, latest_states
from ops.members import Registration
from ops.stack import (
    Stack,
    free_port,
    sandbox_config,
    sandbox_control_client,
    sandbox_member,
    sandbox_url,
)
from relais.blobs.filesystem import FilesystemBlobStore
from relais.identifiers import luhn_check_digit
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from tests.integration.conftest import apply_hub_topics, register
from tests.unit.test_pes_checks import signed_whole_file
from topics import member as member_topics

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
HELIOS_KNOBS = {"ko_rate": 0.1, "partial_rate": 0.1, "duplicate_rate": 0.2, "retour_rate": 0.1}
ENV = {
    # as the fault suite: a delivery under 30 % errors may need many attempts
    "RELAIS_RETRY_TIERS": ",".join(["5s"] * 24),
    "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
    "RELAIS_TDT_TIMEOUT_SECONDS": "2",
    "RELAIS_PREFECTURE_POLL_SECONDS": "2",
}


def free_port_block(size: int = 4) -> int:
    """A base port whose ``size`` ports are all free: the sandboxes listen on the base
    port plus an offset (TdT 0, i-Parapheur 2, archive 3)."""
    for _ in range(50):
        base = free_port()
        if base + size >= 65535:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no block of free ports found")


def sirens(count: int) -> list[str]:
    out = []
    for n in range(count):
        body = f"25{n:06d}"
        out.append(body + str(luhn_check_digit(body)))
    return out


@pytest.fixture(scope="module")
def pes_stack(
    hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[Registration]]]:
    data_dir = tmp_path_factory.mktemp("pes")
    settings = Settings.from_env(
        kafka_bootstrap=hub_kafka_bootstrap, data_dir=data_dir,
        app_id=f"relais-pes-{uuid.uuid4().hex[:8]}", sandbox_tdt_port=free_port_block(),
        api_port=free_port(),
    )
    registrations = [
        sandbox_member(settings, siren, f"Commune {i}", "025", tdt_options=(
            {"pes_signature_required": "true"} if i < SIGNING_MEMBERS else None))
        for i, siren in enumerate(sirens(MEMBERS))
    ]
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, registrations))
    stack = Stack(settings, data_dir / "logs", extra_env=ENV)
    try:
        stack.start_sandbox(sandbox_config(registrations, faults=TDT_FAULTS, seed=25))
        stack.start_worker()
        yield stack, registrations
    finally:
        stack.stop()


def _file(siren: str, index: int, signed: bool) -> bytes:
    raw = pes_aller(PesHeader(siren), f"PES{siren}N{index:04d}", bordereaux=2,
                    first_number=10 + 2 * index)
    return signed_whole_file(unsigned=raw) if signed else raw


async def _notifications(bootstrap: str, siren: str) -> list[dict[str, Any]]:
    codec = AvroCodec()
    tp = TopicPartition(member_topics.notifications(siren).name, 0)
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [codec.decode(r.value, expected="Notification").record for r in records]
        return out
    finally:
        await consumer.stop()


async def _helios_stats(settings: Settings) -> dict[str, Any]:
    async with sandbox_control_client(settings) as client:
        answer = await client.get(f"{sandbox_url(settings)}/sandbox/helios/stats")
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats


async def _publish_files(
    settings: Settings, registrations: list[Registration]
) -> dict[str, str]:
    """Every member's files uploaded and submitted; flow id → member SIREN."""
    store = FilesystemBlobStore(settings.blob_dir)
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    expected: dict[str, str] = {}
    try:
        for index in range(FILES_PER_MEMBER):  # members interleaved, as real traffic
            for number, registration in enumerate(registrations):
                siren = registration.member.siren
                raw = _file(siren, index, signed=number < SIGNING_MEMBERS)
                blob = await store.put_bytes(raw, media_type="application/xml",
                                             filename=f"pes-{index}.xml", owner=siren)
                flow_id = await publish_pes(publisher, siren, f"pes-{index}", blob)
                expected[flow_id] = siren
    finally:
        await publisher.stop()
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

    states: dict[str, str] = {}
    deadline = time.monotonic() + 120 + 1.2 * len(expected)
    while time.monotonic() < deadline:
        found = await latest_states(settings.bootstrap_servers, FlowFilter(flow_type="pes"))
        states = {s["flow_id"]: s["state"] for s in found if s["flow_id"] in expected}
        if len(states) == len(expected) and set(states.values()) <= TERMINAL:
            break
        await asyncio.sleep(3)
    elapsed = time.monotonic() - started
    outcome = Counter(states.values())
    helios = await _helios_stats(settings)
    print(f"\n{len(expected)} PES files: all terminal after {elapsed:.1f} s; hub {dict(outcome)};"
          f" sandbox {helios['outcomes']}, imports received {helios['imports_received']}, "
          f"transactions {helios['transactions']}, retours {helios['retours']}")
    assert len(states) == len(expected), f"{len(expected) - len(states)} flows have no state"
    assert set(outcome) <= TERMINAL, outcome
    # the comptable's verdict is the flow's: S²LOW's -1 never happens to these files
    assert {k: v for k, v in outcome.items()} == helios["outcomes"], (outcome, helios)
    assert outcome["acknowledged"] and outcome["partially-accepted"] and outcome["rejected"]

    # exactly once at the TdT: one transaction per file, per member, no second import
    assert helios["transactions"] == len(expected)
    assert helios["duplicate_imports"] == 0
    assert helios["transactions_by_login"] == {r.member.siren: FILES_PER_MEMBER
                                               for r in registrations}
    async with sandbox_control_client(settings) as client:
        tdt = (await client.get(f"{sandbox_url(settings)}/sandbox/stats")).json()
    assert tdt["faults"].get("error", 0) > 0 and tdt["faults"].get("timeout", 0) > 0, tdt

    for registration in registrations:
        siren = registration.member.siren
        notes = await _notifications(settings.bootstrap_servers, siren)
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
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="tests")
    await publisher.start()
    try:
        flow_id = await publish_pes(publisher, siren, "pes-tampered", blob)
    finally:
        await publisher.stop()
    refusal: dict[str, Any] | None = None
    deadline = time.monotonic() + 60
    while refusal is None and time.monotonic() < deadline:
        notes = await _notifications(settings.bootstrap_servers, siren)
        refusal = next((n for n in notes if n["flow_id"] == flow_id
                        and n["kind"] == "REJECTED"), None)
        await asyncio.sleep(1)
    assert refusal is not None, "the tampered file was never refused"
    assert refusal["state"] == "rejected"
    codes = {r["code"] for r in refusal["reasons"]}
    assert codes == {"pes_signature_tampered"}, refusal["reasons"]
    assert all(r["field"].startswith("pes_aller.") for r in refusal["reasons"])
    after = await _helios_stats(settings)
    assert after["imports_received"] == before["imports_received"]
    assert after["transactions"] == before["transactions"]
