"""CPU per record of the ingress handler, in process, without a broker (issue 12).

The records are the ones the ladder's ingress rung publishes
(:func:`benchmarks.ingress_throughput.prepare`: valid acte submissions round-robin over
``--members`` members, with the member's CloudEvents headers); the blob store is the real
filesystem store in a temporary directory (the referenced PDF owned by every member); the
members are an in-memory directory. Each batch of 500 records is handled by 16 coroutines,
as the stage runner's workers do:

- ``--mode handler``: the runner's ``prepare`` (``relais_*`` headers dropped), then
  :func:`agents.ingress.handler.handle_submission`;
- ``--mode runner``: the ingress runner's own per-record path (``StageRunner._handle``:
  its log context and local-write bookkeeping), publishing left out.

It prints the CPU time of the process (``time.process_time``, the blob look-ups' worker
thread included) per record for each run, and their minimum; ``--profile`` prints a
cProfile of each run instead of timing alone (slower; for where the time goes, not for
figures). No broker, so the Kafka client's own cost is not in it: the ladder's
``CPU ms/rec`` of ``L2 ingress`` is.

    .venv/bin/python -m benchmarks.ingress_cpu --mode handler --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from agents.ingress.gateway import ingress_runner
from agents.ingress.handler import IngressCounters, IngressDeps, handle_submission
from benchmarks import bench_sirens, upload_pdf
from benchmarks.ingress_throughput import SIZES, prepare
from hub.flows import FLOWS
from relais.api.auth import hash_token
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.kit import machines_of, routes_of
from relais.logs import configure_logging
from relais.members.model import Member
from relais.stages.records import FakeRecord, without_internal_headers
from relais.wire.avro_codec import AvroCodec

BATCH = 500
WORKERS = 16


class Members:
    def __init__(self, sirens: list[str]) -> None:
        self._members = {
            siren: Member(siren=siren, name=f"Commune {siren}", department="021",
                          token_sha256=hash_token(f"token-{siren}"),
                          registered_at=datetime(2026, 1, 1, tzinfo=UTC))
            for siren in sirens
        }

    def get(self, siren: str) -> Member | None:
        return self._members.get(siren)


async def measure(args: argparse.Namespace) -> list[float]:
    """CPU milliseconds per record of each run."""
    configure_logging("json", args.log_level)
    codec = AvroCodec()
    sirens = bench_sirens(args.members)
    root = Path(tempfile.mkdtemp(prefix="relais-ingress-cpu-"))
    blob = await upload_pdf(root, "ingress-cpu", owners=sirens)
    deps = IngressDeps(codec=codec, members=Members(sirens), blobs=FilesystemBlobStore(root),
                       max_submission_bytes=1024 * 1024, counters=IngressCounters(),
                       routes=routes_of(FLOWS), machines=machines_of(FLOWS))
    records = [FakeRecord(topic=p.topic, offset=offset, key=p.key, value=p.value,
                          headers=list(p.headers))
               for offset, p in enumerate(prepare(codec, sirens, blob, "cpu", args.records,
                                                  args.size))]
    handle: Callable[[FakeRecord], Awaitable[object]]
    if args.mode == "runner":
        runner = ingress_runner("127.0.0.1:1", deps, group_id="ingress-cpu")

        async def handle(record: FakeRecord) -> object:
            return await runner._handle(runner._prepared(record), [])
    else:
        async def handle(record: FakeRecord) -> object:
            return await handle_submission(without_internal_headers(record), deps)

    async def one_batch(batch: list[FakeRecord]) -> None:
        waiting = iter(batch)

        async def work() -> None:
            for record in waiting:
                await handle(record)

        await asyncio.gather(*(work() for _ in range(WORKERS)))

    batches = [records[i:i + BATCH] for i in range(0, len(records), BATCH)]
    for batch in batches[:2]:  # warm-up: caches, the executor's thread
        await one_batch(batch)
    per_record = []
    for _ in range(args.repeat):
        profiler = cProfile.Profile() if args.profile else None
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        for batch in batches:
            await one_batch(batch)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        per_record.append((time.process_time() - started) * 1000 / len(records))
    deps.counters.summarise()
    return per_record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("handler", "runner"), default="handler")
    parser.add_argument("--records", type=int, default=4000, help="records per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--log-level", default="INFO", help="as deployed: INFO")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--top", type=int, default=40, help="cProfile lines")
    args = parser.parse_args(argv)
    runs = asyncio.run(measure(args))
    print(f"ingress {args.mode}: CPU ms per record over {args.records} {args.size} records, "
          f"{args.repeat} runs: {', '.join(f'{v:.4f}' for v in runs)}; min {min(runs):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
