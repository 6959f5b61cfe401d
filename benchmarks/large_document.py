"""A large acte through the whole hub: upload → validation → TdT post, memory measured.

Run from the repository root::

    .venv/bin/python -m benchmarks.large_document            # 150 MB (10^6 bytes)
    .venv/bin/python -m benchmarks.large_document --size-mb 40 --json large.json

It starts a throwaway broker (free loopback ports), registers one member whose TdT is the
sandbox TdT (mTLS, acknowledging at once), starts the sandbox, the hub API and one hub
worker as child processes (``ops.stack.Stack``, as the demo and the integration tests
do), then:

1. warms up: a small PDF uploaded through the API and its acte submitted, followed to its
   stamped copy (modules imported, connections and schemas made, as in a running hub);
2. takes each process's baseline (``VmRSS``) and resets its peak (``VmHWM``, through
   ``/proc/<pid>/clear_refs``), then samples ``VmRSS`` every ``--sample-ms``;
3. uploads a generated ``--size-mb`` MB PDF (10^6 bytes; a valid PDF: header, page tree, one large
   stream object of incompressible bytes, cross-reference table and trailer) with
   ``POST /v1/blobs``, streamed from a generator (the benchmark never holds it either);
4. publishes an acte naming it and waits for its *posted* notification: the first window,
   the one issue 12 bounds (API and worker growth under ``--bar-mb``, 64 MB);
5. unless ``--posted-only``, waits for *acknowledged* and the stamped copy's notification
   (the worker fetches the préfecture-stamped PDF from the TdT one poll tier later): the
   second window, reported beside the first.

150 MB is the largest round size the TdT takes: S²LOW refuses an acte whose generated
archive (the files and the XML message, tar.gz) exceeds 150 MiB (``ACTES_ARCHIVE_MAX_SIZE``),
and a 150 MiB PDF makes an archive of 150.05 MiB.

Growth is the peak (``VmHWM`` since the reset, or the largest sample) minus the baseline.
The sandbox TdT's growth is reported too (the partner's side; not a target). Exit code 1
when the API or the worker grew more than ``--bar-mb`` in the first window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks import (
    BenchmarkError,
    bench_sirens,
    load_line,
    run_benchmark,
    start_broker,
    table,
    temp_dir,
)
from benchmarks.hub_setup import bench_hub, provision, start_sandbox_tdt
from benchmarks.ingress_throughput import prepare
from benchmarks.notification_reader import NotificationReader
from ops.kafka.broker import LocalBroker
from ops.members import Registration
from ops.stack import sandbox_member
from relais.blobs.model import BlobRef
from relais.documents import sample_pdf
from relais.errors import InfrastructureError
from relais.kafka import clients as kafka_clients
from relais.wire.avro_codec import AvroCodec

APP_ID = "relais-bench-large"
MIB = 1024 * 1024
MB = 1000 * 1000
BAR_MB = 64.0
PROCESSES = ("api", "worker", "sandbox")
STAMPED = "stamped_acte"


# ------------------------------------------------------------------ the document


def pdf_parts(size: int, block: bytes) -> Iterator[bytes]:
    """A valid PDF of exactly ``size`` bytes, in chunks of at most ``len(block)`` bytes.

    One page showing a line of text, and an unreferenced stream object filled with
    ``block`` repeated (random bytes do not compress: a scanned acte's images do not
    either). Offsets in the cross-reference table are exact, so a PDF reader (and the
    sandbox's stamp) reads the file.
    """
    page_text = b"BT /F1 12 Tf 72 760 Td (Relais large document benchmark) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(page_text) + page_text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    head = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(head))
        head += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    big_number = len(objects) + 1

    def tail_for(filler: int) -> bytes:
        big_offset = len(head)
        xref = big_offset + len(big_head(filler)) + filler + len(b"\nendstream\nendobj\n")
        out = bytearray(b"\nendstream\nendobj\n")
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (big_number + 1)
        for offset in (*offsets, big_offset):
            out += b"%010d 00000 n \n" % offset
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            big_number + 1, xref)
        return bytes(out)

    def big_head(filler: int) -> bytes:
        return b"%d 0 obj\n<< /Length %d >>\nstream\n" % (big_number, filler)

    # The tail's length depends on the filler's only through the digits of offsets.
    filler = size - len(head) - len(big_head(size)) - len(tail_for(size))
    for _ in range(3):
        total = len(head) + len(big_head(filler)) + filler + len(tail_for(filler))
        filler += size - total
    if filler < 0 or len(head) + len(big_head(filler)) + filler + len(tail_for(filler)) != size:
        raise BenchmarkError(f"cannot make a PDF of exactly {size} bytes")
    yield bytes(head) + big_head(filler)
    left = filler
    while left > 0:
        chunk = block[:left]
        left -= len(chunk)
        yield chunk
    yield tail_for(filler)


async def _aiter(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


# ------------------------------------------------------------------- memory


def status_kb(pid: int, field_name: str) -> int | None:
    """A ``VmRSS``/``VmHWM``-like field of ``/proc/<pid>/status`` in kB; None when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def reset_peak(pid: int) -> bool:
    """Reset ``pid``'s ``VmHWM`` to its current RSS (Linux ≥ 4.0); False when refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


@dataclass
class Memory:
    """One process's memory over the measured windows, in MiB."""

    pid: int
    baseline_mib: float = 0.0
    peak_reset: bool = False
    sampled_peak_kb: int = 0
    windows: dict[str, float] = field(default_factory=dict)  # window -> peak MiB

    def peak_now(self) -> float:
        hwm = status_kb(self.pid, "VmHWM") if self.peak_reset else None
        return max(hwm or 0, self.sampled_peak_kb) / 1024

    def growth(self, window: str) -> float | None:
        peak = self.windows.get(window)
        return None if peak is None else peak - self.baseline_mib


class Sampler:
    """Samples the processes' ``VmRSS`` every ``interval`` seconds and keeps the peaks."""

    def __init__(self, memories: dict[str, Memory], interval: float) -> None:
        self.memories = memories
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for memory in self.memories.values():
            memory.baseline_mib = (status_kb(memory.pid, "VmRSS") or 0) / 1024
            memory.peak_reset = reset_peak(memory.pid)
            memory.sampled_peak_kb = 0
        self._task = asyncio.create_task(self._run(), name="rss-sampler")

    async def _run(self) -> None:
        while True:
            for memory in self.memories.values():
                rss = status_kb(memory.pid, "VmRSS") or 0
                memory.sampled_peak_kb = max(memory.sampled_peak_kb, rss)
            await asyncio.sleep(self.interval)

    def mark(self, window: str) -> None:
        for memory in self.memories.values():
            memory.windows[window] = memory.peak_now()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# ------------------------------------------------------------- notifications


class Notifications(NotificationReader):
    """Reads the member's notifications (read_committed): when each flow reached each
    state, and when its stamped copy's notice came (this process's monotonic clock)."""

    def __init__(self, bootstrap: str, siren: str, codec: AvroCodec) -> None:
        super().__init__(bootstrap, [siren], codec)
        self.seen: dict[str, dict[str, float]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}

    def observe(self, note: dict[str, Any], record: Any, now: float) -> None:
        flow = note["flow_id"]
        self.notes.setdefault(flow, []).append(note)
        marks = self.seen.setdefault(flow, {})
        marks.setdefault(note["state"], now)
        if (note.get("details") or {}).get("document") == STAMPED:
            marks.setdefault(STAMPED, now)

    async def wait(self, flow: str, mark: str, limit: float) -> float:
        """The moment ``flow`` reached ``mark``; BenchmarkError after ``limit`` seconds or
        when the flow was rejected or failed."""
        deadline = time.monotonic() + limit
        while mark not in self.seen.get(flow, {}):
            self.check_running()
            for bad in ("rejected", "failed", "uncertain"):
                if bad in self.seen.get(flow, {}):
                    notes = [(n["kind"], n["state"], n["message"], n["reasons"])
                             for n in self.notes.get(flow, [])]
                    raise BenchmarkError(f"the acte ended {bad}: {notes}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"no {mark!r} notification within {limit:.0f} s; seen: "
                                     f"{sorted(self.seen.get(flow, {}))}")
            await asyncio.sleep(0.05)
        return self.seen[flow][mark]


# ------------------------------------------------------------------ the run


@dataclass
class Result:
    size_bytes: int
    upload_seconds: float = 0.0
    posted_seconds: float = 0.0  # from the upload's end to the posted notification
    acknowledged_seconds: float | None = None
    stamped_seconds: float | None = None
    stamped_outcome: str | None = None
    blob: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Memory] = field(default_factory=dict)


class Bench:
    def __init__(self, stack: contextlib.ExitStack, args: argparse.Namespace,
                 broker: LocalBroker, work: Path) -> None:
        self.stack = stack
        self.args = args
        self.broker = broker
        self.codec = AvroCodec()
        self.siren = bench_sirens(1, first=93_000_000)[0]
        self.settings, self.hub = bench_hub(broker, work, APP_ID)
        self.registration: Registration | None = None
        self._numbers = 0

    @property
    def api(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    async def setup(self) -> None:
        self.registration = sandbox_member(self.settings, self.siren,
                                           "Commune du grand document", "021")
        await provision(self.broker.bootstrap, self.codec, APP_ID, [self.registration],
                        client_id="bench-large")
        self.stack.callback(self.hub.stop)
        print("Starting the sandbox TdT, the API and a worker ...", flush=True)
        start_sandbox_tdt(self.hub, [self.registration])
        try:
            self.hub.start_api()
            self.hub.start_worker()
        except InfrastructureError as exc:
            raise BenchmarkError(str(exc)) from exc

    def pids(self) -> dict[str, int]:
        found = {}
        for name in PROCESSES:
            process = self.hub.processes.get(name)
            pid = process.pid if process is not None else None
            if pid is None:
                raise BenchmarkError(f"the {name} process is not running")
            found[name] = pid
        return found

    async def upload(self, client: httpx.AsyncClient, content: AsyncIterator[bytes] | bytes,
                     size: int, filename: str) -> BlobRef:
        assert self.registration is not None
        answer = await client.post(
            f"{self.api}/v1/blobs", content=content,
            headers={"Authorization": f"Bearer {self.registration.token}",
                     "Content-Type": "application/pdf", "X-Relais-Filename": filename,
                     "Content-Length": str(size)})
        if answer.status_code != 201:
            raise BenchmarkError(f"upload refused: {answer.status_code} {answer.text}")
        body = answer.json()
        return BlobRef(sha256=body["sha256"], size=body["size"],
                       media_type=body["media_type"], filename=body["filename"])

    async def submit(self, blob: BlobRef, prefix: str) -> str:
        item = prepare(self.codec, [self.siren], blob, prefix, 1, "small",
                       first_number=self._numbers)[0]
        self._numbers += 1
        producer = kafka_clients.producer(bootstrap_servers=self.broker.bootstrap,
                                          enable_idempotence=True, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(item.topic, item.value, key=item.key,
                                         headers=item.headers)
        finally:
            await producer.stop()
        return item.flow_id

    async def run(self) -> Result:
        await self.setup()
        size = self.args.size_mb * MB
        result = Result(size_bytes=size)
        notes = Notifications(self.broker.bootstrap, self.siren, self.codec)
        await notes.start()
        try:
            async with httpx.AsyncClient(timeout=self.args.timeout) as client:
                print("Warm-up: a small acte through upload, posting and its stamped copy ...",
                      flush=True)
                small = sample_pdf("Relais warm-up")
                warm = await self.submit(await self.upload(client, small, len(small),
                                                           "warm-up.pdf"), "warm")
                await notes.wait(warm, STAMPED if not self.args.posted_only else "posted",
                                 self.args.timeout)
                await asyncio.sleep(1.0)  # let the stages commit and settle

                memories = {name: Memory(pid) for name, pid in self.pids().items()}
                sampler = Sampler(memories, self.args.sample_ms / 1000)
                sampler.start()
                result.memory = memories
                print(f"Uploading a {self.args.size_mb} MB PDF through POST /v1/blobs ...",
                      flush=True)
                block = os.urandom(MIB)
                started = time.monotonic()
                blob = await self.upload(client, _aiter(pdf_parts(size, block)), size,
                                         "grand-document.pdf")
                uploaded = time.monotonic()
                result.upload_seconds = uploaded - started
                result.blob = blob.to_dict()
                if blob.size != size:
                    raise BenchmarkError(f"the API stored {blob.size} bytes, not {size}")
                sampler.mark("upload")
                print("Submitting the acte and waiting for posted ...", flush=True)
                flow = await self.submit(blob, "large")
                posted = await notes.wait(flow, "posted", self.args.timeout)
                result.posted_seconds = posted - uploaded
                sampler.mark("posted")
                if not self.args.posted_only:
                    print("Waiting for acknowledged and the stamped copy ...", flush=True)
                    acked = await notes.wait(flow, "acknowledged", self.args.timeout)
                    result.acknowledged_seconds = acked - uploaded
                    stamped = await notes.wait(flow, STAMPED, self.args.timeout)
                    result.stamped_seconds = stamped - uploaded
                    last = [n for n in notes.notes.get(flow, [])
                            if (n.get("details") or {}).get("document") == STAMPED]
                    result.stamped_outcome = last[-1]["kind"] if last else None
                    await asyncio.sleep(0.5)
                    sampler.mark("stamped")
                await sampler.stop()
        finally:
            await notes.stop()
        return result


# ---------------------------------------------------------------- the report


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(args: argparse.Namespace, result: Result) -> str:
    windows = [w for w in ("upload", "posted", "stamped")
               if any(w in m.windows for m in result.memory.values())]
    headers = ["process", "baseline MiB", *(f"growth to {w} MiB" for w in windows)]
    rows = []
    for name, memory in result.memory.items():
        rows.append([f"{name} (pid {memory.pid})", f"{memory.baseline_mib:.0f}",
                     *(_mib(memory.growth(w)) for w in windows)])
    mb = result.size_bytes / MB
    lines = [
        "",
        f"RELAIS LARGE DOCUMENT: {mb:.0f} MB acte PDF, upload -> validation -> TdT post"
        + ("" if args.posted_only else " -> acknowledged -> stamped copy"),
        "",
        table(headers, rows),
        "",
        f"upload {result.upload_seconds:.1f} s ({mb / max(result.upload_seconds, 1e-9):.0f} "
        f"MB/s); posted {result.posted_seconds:.1f} s after the upload"
        + ("" if result.acknowledged_seconds is None else
           f"; acknowledged {result.acknowledged_seconds:.1f} s") +
        ("" if result.stamped_seconds is None else
         f"; stamped copy notice ({result.stamped_outcome}) {result.stamped_seconds:.1f} s"),
        "growth = peak RSS (VmHWM reset at the baseline, and VmRSS sampled every "
        f"{args.sample_ms} ms) minus the baseline VmRSS; bar: API and worker under "
        f"{args.bar_mb:.0f} MB up to posted (issue 12); the sandbox TdT is the partner's side",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.platform()}",
    ]
    return "\n".join(lines)


def over_bar(args: argparse.Namespace, result: Result) -> list[str]:
    """The hub processes that grew more than the bar up to *posted*."""
    return [name for name in ("api", "worker")
            if (growth := result.memory[name].growth("posted")) is not None
            and growth * MIB > args.bar_mb * MB]


def as_json(args: argparse.Namespace, result: Result) -> dict[str, Any]:
    data = asdict(result)
    data["memory"] = {
        name: {**asdict(m), "growth_mib": {w: m.growth(w) for w in m.windows}}
        for name, m in result.memory.items()
    }
    return {
        "knobs": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "over_bar": over_bar(args, result),
        **data,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.large_document",
        description="A large acte PDF uploaded through the API, validated and posted to the "
        "sandbox TdT; peak RSS growth of the API, the worker and the sandbox.")
    parser.add_argument("--size-mb", type=int, default=150,
                        help="the acte's size in MB of 10^6 bytes (default 150; the TdT "
                        "takes up to about 157 MB, its archive's 150 MiB limit)")
    parser.add_argument("--bar-mb", type=float, default=BAR_MB,
                        help="largest growth allowed for the API and the worker up to "
                        "posted, in MB (default 64: issue 12)")
    parser.add_argument("--posted-only", action="store_true",
                        help="stop at posted (skip acknowledged and the stamped copy)")
    parser.add_argument("--sample-ms", type=int, default=50,
                        help="VmRSS sampling interval in ms (default 50)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds for each step (default 600)")
    parser.add_argument("--broker-timeout", type=float, default=180.0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.size_mb <= 1024:
        parser.error("--size-mb must be between 1 and 1024")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed: list[str] = []

    def body(stack: contextlib.ExitStack) -> None:
        work = temp_dir(stack, "relais-bench-large-", args.keep)
        broker, seconds = start_broker(stack, work / "broker", args.broker_timeout)
        print(f"Broker ready in {seconds:.1f} s (pid {broker.running_pid()})", flush=True)
        load_before = load_line()
        bench = Bench(stack, args, broker, work)
        if args.size_mb * MB > bench.settings.max_acte_bytes:
            raise BenchmarkError(f"--size-mb {args.size_mb} is above RELAIS_MAX_ACTE_BYTES "
                                 f"({bench.settings.max_acte_bytes} bytes)")
        result = asyncio.run(bench.run())
        print(report(args, result))
        print(f"({load_before} at the start, {load_line()} at the end)")
        if args.json is not None:
            args.json.write_text(json.dumps(as_json(args, result), indent=2, default=str),
                                 encoding="utf-8")
            print(f"Figures written to {args.json}")
        failed.extend(over_bar(args, result))
        if failed:
            print(f"OVER THE BAR: {', '.join(failed)} grew more than {args.bar_mb:.0f} MB "
                  "up to posted", file=sys.stderr)

    code = run_benchmark(body)
    return code or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
