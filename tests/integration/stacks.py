"""Set-up and polling shared by the integration tests that run a whole stack.

A module's fixture builds its settings with :func:`stack_settings`, then runs
:func:`running_stack` (topics, members, sandbox partners, workers; all stopped at
teardown). Its tests read what the hub wrote with :func:`notifications`,
:func:`wait_for_states` and :func:`wait_for_notes`, publish with :func:`publishing`
and read the sandbox TdT's counters with :func:`tdt_stats`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from ops.demo_documents import minimal_pdf
from ops.flows import FlowFilter, latest_states
from ops.members import Registration
from ops.stack import Stack, free_port, sandbox_base_port, sandbox_control_client, sandbox_url
from ops.submissions import ActeDraft, publish_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.identifiers import luhn_check_digit
from relais.kafka import clients as kafka_clients
from relais.kafka.publisher import Publisher
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from tests.integration.conftest import apply_hub_topics, register
from topics import member as member_topics

Note = dict[str, Any]


def sirens(count: int, prefix: str = "20") -> list[str]:
    """``count`` valid SIRENs starting with ``prefix`` (two digits, one per module)."""
    out = []
    for n in range(count):
        body = f"{prefix}{n:06d}"
        out.append(body + str(luhn_check_digit(body)))
    return out


def stack_settings(bootstrap: str, data_dir: Path, name: str, *,
                   sandbox_block: int = 10) -> Settings:
    """Settings of a module's stack: its own app id, a free block of sandbox ports
    (``sandbox_block`` of them) and a free API port."""
    return Settings.from_env(
        kafka_bootstrap=bootstrap, data_dir=data_dir,
        app_id=f"relais-{name}-{uuid.uuid4().hex[:8]}",
        sandbox_tdt_port=sandbox_base_port(block=sandbox_block), api_port=free_port(),
    )


@contextmanager
def running_stack(
    settings: Settings,
    registrations: list[Registration],
    tdt_config: dict[str, Any],
    *,
    extra_env: dict[str, str],
    tls: bool = True,
    workers: tuple[str, ...] = ("worker",),
    **sandboxes: dict[str, Any] | None,
) -> Iterator[Stack]:
    """The hub's topics and ``registrations`` applied, then the sandbox partners (the TdT
    with ``tdt_config``, the others as ``sandboxes`` name them: ``registries=…``,
    ``iparapheur=…``) and ``workers`` started (side by side); everything stopped on the way
    out."""
    asyncio.run(apply_hub_topics(settings))
    asyncio.run(register(settings, registrations))
    stack = Stack(settings, settings.data_dir / "logs", tls=tls, extra_env=extra_env)
    try:
        stack.start_sandbox(tdt_config, **sandboxes)
        # Several workers start side by side (each waits for its own ready line); the
        # pool's exit waits for every one, so a failed start leaves none to stop later.
        with ThreadPoolExecutor(max_workers=max(1, len(workers))) as pool:
            for started in [pool.submit(stack.start_worker, name) for name in workers]:
                started.result()
        yield stack
    finally:
        stack.stop()


@asynccontextmanager
async def publishing(settings: Settings, client_id: str = "tests") -> AsyncIterator[Publisher]:
    """A started publisher on the stack's broker, stopped on the way out."""
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id=client_id)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


async def publish_actes(settings: Settings, drafts: Iterable[ActeDraft]) -> dict[str, str]:
    """``drafts`` submitted in order; flow id → member SIREN."""
    expected: dict[str, str] = {}
    async with publishing(settings) as publisher:
        for draft in drafts:
            await publish_acte(publisher, draft)
            expected[flow_id_for(draft.member_siren, draft.submission_id)] = draft.member_siren
    return expected


async def notifications(bootstrap: str, siren: str) -> list[Note]:
    """Every committed notification of ``siren``'s topic, up to its end when called."""
    codec = AvroCodec()
    tp = TopicPartition(member_topics.notifications(siren).name, 0)
    consumer = kafka_clients.consumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      isolation_level="read_committed")
    await consumer.start()
    try:
        end = (await consumer.end_offsets([tp]))[tp]  # before the fetcher's long poll starts
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [codec.decode(r.value, expected="Notification").record for r in records]
        return out
    finally:
        await consumer.stop()


def settled_in(flows: Collection[str], wanted: Collection[str]) -> Callable[[dict[str, str]],
                                                                             bool]:
    """Done when every one of ``flows`` has a state, each of them in ``wanted``."""
    def done(states: dict[str, str]) -> bool:
        return len(states) == len(flows) and set(states.values()) <= set(wanted)
    return done


async def wait_for_states(
    settings: Settings,
    flow_filter: FlowFilter,
    done: Callable[[dict[str, str]], bool],
    *,
    timeout: float,
    every: float,
    flows: Collection[str] | None = None,
) -> dict[str, str]:
    """Latest flow states matching ``flow_filter`` (only ``flows`` if given), read every
    ``every`` seconds until ``done`` holds or ``timeout`` passes; the last reading."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        found = await latest_states(settings.bootstrap_servers, flow_filter)
        states = {s["flow_id"]: s["state"] for s in found
                  if flows is None or s["flow_id"] in flows}
        if done(states):
            break
        await asyncio.sleep(every)
    return states


async def wait_for_notes(
    settings: Settings, siren: str, done: Callable[[list[Note]], bool], *,
    timeout: float, every: float,
) -> list[Note]:
    """``siren``'s notifications, read every ``every`` seconds until ``done`` holds or
    ``timeout`` passes; the last reading."""
    deadline = time.monotonic() + timeout
    notes: list[Note] = []
    while time.monotonic() < deadline:
        notes = await notifications(settings.bootstrap_servers, siren)
        if done(notes):
            break
        await asyncio.sleep(every)
    return notes


async def wait_for_refusal(settings: Settings, siren: str, flow_id: str, *, timeout: float,
                           every: float) -> Note | None:
    """The ``REJECTED`` notification ``siren`` receives for ``flow_id`` (None if none came
    within ``timeout``)."""
    def refusal_of(notes: list[Note]) -> Note | None:
        return next((n for n in notes if n["flow_id"] == flow_id and n["kind"] == "REJECTED"),
                    None)

    return refusal_of(await wait_for_notes(
        settings, siren, lambda notes: refusal_of(notes) is not None, timeout=timeout,
        every=every))


async def shared_acte_blob(settings: Settings, registrations: list[Registration]) -> BlobRef:
    """One PDF in the stack's blob store that every member references (so each owns it)."""
    store = FilesystemBlobStore(settings.blob_dir)
    blob = await store.put_bytes(minimal_pdf("acte"), media_type="application/pdf",
                                 filename="acte.pdf")
    for registration in registrations:
        await store.grant(blob.sha256, registration.member.siren)
    return blob


async def tdt_stats(settings: Settings, path: str = "/sandbox/stats") -> dict[str, Any]:
    """The sandbox TdT's counters (``path``: another of its control pages), over mTLS."""
    async with sandbox_control_client(settings) as client:
        answer = await client.get(f"{sandbox_url(settings)}{path}")
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats
