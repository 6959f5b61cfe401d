"""Issue 11's figure: a burst of registry look-ups from two hub workers, and whether it
slows the actes.

Run from the repository root (the full size takes about 15 minutes: 300 distinct numbers
at 30 a minute)::

    .venv/bin/python -m benchmarks.registry_burst
    .venv/bin/python -m benchmarks.registry_burst --lookups 400 --distinct 60 --window 10

On a throwaway broker it starts the sandbox TdT and the sandbox registries (Sirene limited
to ``--quota`` requests per ``--window`` seconds, the hub told the same), two hub workers,
and registers three members. Then two phases:

baseline
    ``--actes`` actes, one every ``--acte-interval`` seconds, round-robin over the members;
    each acte's time to *posted* (publish → the member reads its ``posted`` notification);
burst
    the same, while ``--lookups`` look-ups for ``--distinct`` numbers are published at once
    (random order, over the members); the phase waits until every look-up is answered.

It prints the actes' median and p90 time to *posted* in both phases (issue 11: the burst's
median within 10 % of the baseline's), how long the burst took, and what the sandbox
counted: the most requests in any rolling window (at most the quota), 429s (none
expected), the distinct numbers asked and how many were asked more than once (none).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import socket
import statistics
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from benchmarks import (
    BenchmarkError,
    fmt,
    load_line,
    percentile,
    run_benchmark,
    start_broker,
    table,
    temp_dir,
    upload_pdf,
)
from hub.flows import FLOWS
from ops.members import Registration, register_members
from ops.notifications import NotificationWatcher
from ops.stack import (
    Stack,
    free_port,
    registries_url,
    sandbox_config,
    sandbox_member,
    sandbox_tls_material,
)
from ops.submissions import ActeDraft, publish_acte
from ops.topics import apply_topics
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.identifiers import luhn_check_digit
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics import member as member_topics
from topics.catalogue import hub_topics

PREFIX = {"warmup": "W", "base": "A", "burst": "B"}
"""Each phase's numéros internes differ, so no IDActe is used twice."""
MEMBERS = (("212102313", "Commune de Dijon", "021"), ("217100072", "Commune de Macon", "071"),
           ("200000016", "Communauté de test", "021"))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--distinct", type=int, default=300)
    parser.add_argument("--quota", type=int, default=30, help="Sirene requests per window")
    parser.add_argument("--window", type=float, default=60.0, help="quota window, seconds")
    parser.add_argument("--actes", type=int, default=60, help="actes per phase")
    parser.add_argument("--acte-interval", type=float, default=0.5)
    parser.add_argument("--burst-timeout", type=float, default=1800.0)
    parser.add_argument("--broker-timeout", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait after the workers start")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    return parser.parse_args()


def _free_block(size: int = 10) -> int:
    """A base port whose ``size`` ports are all free now (the sandboxes take base + offsets)."""
    rng = random.Random()  # noqa: S311 - a port, not a secret
    for _ in range(200):
        base = rng.randrange(20000, 30000)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise BenchmarkError("no free block of ports for the sandboxes")


def _numbers(samples: dict[str, list[str]], distinct: int, rng: random.Random) -> list[str]:
    """Known units and establishments of every kind, then unknown valid numbers."""
    pools = [list(samples.get(kind, [])) for kind in (
        "active_units", "ceased_units", "partly_diffusible_units", "non_diffusible_units",
        "closed_establishments", "open_establishments", "la_poste_exception_sirets")]
    known = int(distinct * 0.85)
    numbers: list[str] = []
    while len(numbers) < known and any(pools):
        for pool in pools:
            while pool and len(numbers) < known:
                number = pool.pop(0)
                if number not in numbers:
                    numbers.append(number)
                    break
    while len(numbers) < distinct:
        body = f"99{rng.randrange(10**6):06d}"
        number = body + str(luhn_check_digit(body))
        if number not in numbers:
            numbers.append(number)
    return numbers


class Driver:
    """The members' back-offices: publishes actes and look-ups, watches notifications."""

    def __init__(self, stack: Stack, registrations: list[Registration], blob: BlobRef) -> None:
        self.stack = stack
        self.settings = stack.settings
        self.registrations = registrations
        self.blob = blob
        self.codec = AvroCodec()
        self.publisher = Publisher(self.settings.bootstrap_servers, self.codec,
                                   client_id="bench-registry")
        self.watchers = {r.member.siren: NotificationWatcher(self.settings.bootstrap_servers,
                                                             r.member.siren, self.codec)
                         for r in registrations}
        self.posted_at: dict[str, float] = {}
        self.answered: set[str] = set()
        self.pending_seen = 0
        self.first_status_at: dict[str, float] = {}  # a look-up's first pending or answer
        self.answer_times: list[float] = []

    async def start(self) -> None:
        await self.publisher.start()
        for watcher in self.watchers.values():
            await watcher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        for watcher in self.watchers.values():
            await watcher.stop()

    async def poll(self) -> None:
        for watcher in self.watchers.values():
            for note in await watcher.poll(0.05):
                if note["flow_type"] == "acte" and note["state"] == "posted":
                    self.posted_at.setdefault(note["flow_id"], time.monotonic())
                elif note["flow_type"] == "acte" and note["state"] == "rejected":
                    reasons = "; ".join(r["message"] for r in note["reasons"])
                    raise BenchmarkError(f"acte {note['submission_id']} rejected: {reasons}")
                elif note["flow_type"] == "registry":
                    self.first_status_at.setdefault(note["flow_id"], time.monotonic())
                    if note["state"] in ("answered", "rejected", "failed"):
                        self.answered.add(note["flow_id"])
                        self.answer_times.append(time.monotonic())
                    elif note["state"] == "pending":
                        self.pending_seen += 1

    async def actes(self, label: str, count: int, interval: float,
                    required: bool = True) -> list[float]:
        """Publish ``count`` actes at a steady pace; each one's seconds to *posted* (a
        warm-up that does not finish is not an error)."""
        sent: dict[str, float] = {}
        for i in range(count):
            siren = self.registrations[i % len(self.registrations)].member.siren
            sid = f"{label}-{i:04d}"
            draft = ActeDraft(submission_id=sid, member_siren=siren, nature_code=1,
                              matieres=(1, 1), numero_interne=f"{PREFIX[label]}{i:04d}",
                              decision_date=date.today(), objet=f"Acte de mesure {i}",
                              document=self.blob)
            await publish_acte(self.publisher, draft)
            sent[flow_id_for(siren, sid)] = time.monotonic()
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline:
                await self.poll()
        deadline = time.monotonic() + (180 if required else 60)
        while not set(sent) <= set(self.posted_at):
            if time.monotonic() > deadline and not required:
                print(f"  warm-up: {len(set(sent) - set(self.posted_at))} actes not posted")
                return []
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{label}: {len(set(sent) - set(self.posted_at))} actes "
                                     "never posted")
            await self.poll()
        return [self.posted_at[f] - t for f, t in sent.items()]

    async def burst(self, numbers: list[str], lookups: int, rng: random.Random) -> set[str]:
        """Publish every look-up at once; their flow ids."""
        order = [numbers[i % len(numbers)] for i in range(lookups)]
        rng.shuffle(order)
        schema = dataschema_uri(self.codec, "RegistryLookup")
        flows: set[str] = set()
        by_member: dict[str, list[Any]] = {}
        for i, number in enumerate(order):
            siren = self.registrations[i % len(self.registrations)].member.siren
            rid = f"lookup-{i:05d}"
            flows.add(flow_id_for(siren, rid))
            by_member.setdefault(siren, []).append((rid, {
                "request_id": rid, "member_siren": siren, "identifier": number,
                "registry": "SIRENE", "purpose": None, "contract_submission_id": None,
            }, EventHeaders.new(source=f"/members/{siren}/back-office",
                                type="fr.relais.registry.RegistryLookup", subject=rid,
                                flow_id=None, dataschema=schema)))
        for siren, items in by_member.items():
            await self.publisher.publish_many(member_topics.submissions(siren).name, items,
                                              schema_name="RegistryLookup")
        return flows


async def _sandbox_json(stack: Stack, path: str) -> Any:
    url = registries_url(stack.settings, stack.registries_port, tls=stack.tls)
    verify: Any = str(sandbox_tls_material(stack.settings).ca_file) if stack.tls else True
    async with httpx.AsyncClient(verify=verify, timeout=10) as client:
        response = await client.get(f"{url}{path}")
        response.raise_for_status()
        return response.json()


async def _measure(args: argparse.Namespace, stack: Stack, registrations: list[Registration],
                   blob: BlobRef) -> None:
    rng = random.Random(11)  # noqa: S311 - a reproducible order, not a secret
    numbers = _numbers(await _sandbox_json(stack, "/sandbox/numbers"), args.distinct, rng)
    driver = Driver(stack, registrations, blob)
    await driver.start()
    try:
        await driver.actes("warmup", len(registrations), 0.2, required=False)
        print(f"Baseline: {args.actes} actes, one every {args.acte_interval} s ...", flush=True)
        baseline = await driver.actes("base", args.actes, args.acte_interval)
        print(f"Burst: {args.lookups} look-ups for {len(numbers)} numbers, and "
              f"{args.actes} actes ...", flush=True)
        started = time.monotonic()
        flows = await driver.burst(numbers, args.lookups, rng)
        during = await driver.actes("burst", args.actes, args.acte_interval)
        deadline = started + args.burst_timeout
        while not flows <= driver.answered:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{len(flows - driver.answered)} look-ups unanswered "
                                     f"after {args.burst_timeout:.0f} s")
            await driver.poll()
        burst_seconds = time.monotonic() - started
    finally:
        await driver.stop()
    stats = (await _sandbox_json(stack, "/sandbox/stats"))["registries"]["sirene"]
    base_median, burst_median = statistics.median(baseline), statistics.median(during)
    change = (burst_median - base_median) / base_median * 100
    print()
    print(table(["phase", "actes", "median to posted (s)", "p90 (s)"], [
        ["baseline", str(len(baseline)), fmt(base_median, 3), fmt(percentile(baseline, 90), 3)],
        ["during burst", str(len(during)), fmt(burst_median, 3),
         fmt(percentile(during, 90), 3)],
    ], title="Actes' time to posted"))
    print(f"median change during the burst: {change:+.1f} % (issue 11: within 10 %)")
    print()
    print(table(["look-ups", "distinct", "answered", "pending notes", "burst (s)",
                 f"max per {args.window:.0f} s", "429s", "asked >1"], [[
        str(args.lookups), str(len(numbers)), str(len(flows & driver.answered)),
        str(driver.pending_seen), fmt(burst_seconds, 1), str(stats["max_in_rolling_window"]),
        str(stats["quota_refused"]), str(stats["numbers_asked_more_than_once"]),
    ]], title=f"Look-up burst against Sirene at {args.quota} per {args.window:.0f} s"))
    # how soon each look-up heard something (pending or its answer), and whether answers
    # arrive steadily or in clumps (the largest silence between two answers)
    first = [driver.first_status_at[f] - started for f in flows if f in driver.first_status_at]
    answers = sorted(driver.answer_times)
    gap = max((b - a for a, b in itertools.pairwise(answers)), default=0.0)
    print(table(["first status median (s)", "p90 (s)", "max (s)",
                 "longest gap between answers (s)"],
                [[fmt(statistics.median(first), 1), fmt(percentile(first, 90), 1),
                  fmt(max(first), 1), fmt(gap, 1)]],
                title="Look-ups: time from the burst to a first notification"))
    print(load_line())
    if stats["max_in_rolling_window"] > args.quota or stats["numbers_asked_more_than_once"]:
        raise BenchmarkError("the sandbox counted more than the quota or a number twice")


def _body(args: argparse.Namespace, stack_exit: contextlib.ExitStack) -> None:
    work = temp_dir(stack_exit, "relais-registry-burst-", args.keep)
    broker, _ = start_broker(stack_exit, work / "broker", args.broker_timeout)
    settings = Settings.from_env(
        kafka_bootstrap=broker.bootstrap, data_dir=work / "hub",
        app_id=f"relais-bench-{uuid.uuid4().hex[:6]}", sandbox_tdt_port=_free_block(),
        api_port=free_port(),
    )
    registrations = [sandbox_member(settings, s, n, d) for s, n, d in MEMBERS]

    async def prepare() -> BlobRef:
        publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="bench")
        await publisher.start()
        try:
            async with admin_client(settings.bootstrap_servers) as admin:
                await apply_topics(admin, list(hub_topics(settings.app_id, FLOWS)))
                await register_members(admin, publisher, registrations)
        finally:
            await publisher.stop()
        return await upload_pdf(settings.blob_dir, "registry-burst",
                                [r.member.siren for r in registrations])

    blob = asyncio.run(prepare())
    stack = Stack(settings, Path(settings.data_dir) / "logs", extra_env={
        "RELAIS_REGISTRY_SIRENE_QUOTA": str(args.quota),
        "RELAIS_REGISTRY_QUOTA_WINDOW_SECONDS": str(args.window),
    })
    stack_exit.callback(stack.stop)
    print("Starting the sandboxes and two hub workers ...", flush=True)
    stack.start_sandbox(
        sandbox_config(registrations, schedule={"transmit_after": 0.5, "acknowledge_after": 1.5,
                                                "prefecture_message_after": 3600.0}),
        registries={"sirene_quota": {"limit": args.quota, "window_seconds": args.window},
                    "companies": max(400, args.distinct * 2)},
    )
    stack.start_worker("worker-1")
    stack.start_worker("worker-2")
    print(f"Letting the consumer groups settle for {args.settle:.0f} s ...", flush=True)
    time.sleep(args.settle)  # the second worker's rebalances, before anything is measured
    asyncio.run(_measure(args, stack, registrations, blob))


def main() -> int:
    args = _arguments()
    return run_benchmark(lambda stack_exit: _body(args, stack_exit))


if __name__ == "__main__":
    raise SystemExit(main())
