"""A large document archived: the delivery path's memory stays flat.

``python -m benchmarks.archive_large [--mb 150] [--keep]``

Writes a ``--mb`` MB PDF-headed document to a throwaway blob store (streamed, never
whole in memory), starts the sandbox archive in a **child** process (its memory does not
count), then runs in this process what the worker's ``archive-delivery`` and
``archive-status`` stages run: :func:`relais.seda.package.prepare_sip` (SHA-512 of the
blob, manifest validated against the official SEDA schema) and
:meth:`connectors.archive.vitam.VitamConnector.upload` (the SIP zip streamed from the
blob store), then polls the operation and reads the ATR.

It prints the peak RSS growth of this process during the transfer (Linux ``VmHWM``,
reset through ``/proc/self/clear_refs`` after warming up: the schema compiled and the
modules imported, as in a running worker), the time taken and the archive's verdict.
The issue's bar is a growth under 64 MB for 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

BAR_MB = 64.0


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(port: int, spool: str) -> None:
    """The child: the sandbox archive on ``port`` (plain HTTP, loopback)."""
    import uvicorn

    from sandbox.archive.app import create_archive_sandbox
    from sandbox.archive.config import ArchiveConfig

    app = create_archive_sandbox(ArchiveConfig(), spool=Path(spool))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def _document(size: int) -> AsyncIterator[bytes]:
    yield b"%PDF-1.7\n"
    left = size - 9
    block = os.urandom(1024 * 1024)
    while left > 0:
        chunk = block[:left]
        left -= len(chunk)
        yield chunk


async def run(megabytes: int, workdir: Path, port: int) -> int:
    from connectors.archive.settings import ArchiveSettings
    from connectors.archive.vitam import VitamConnector
    from relais.blobs.filesystem import FilesystemBlobStore
    from relais.seda.model import SedaVersion
    from relais.seda.package import DocumentSpec, TransferSpec, UnitSpec, prepare_sip
    from relais.seda.xsd import seda_schema

    store = FilesystemBlobStore(workdir / "blobs")
    ref = await store.put_stream(_document(megabytes * 1024 * 1024),
                                 media_type="application/pdf", filename="grand-plan.pdf")
    seda_schema(SedaVersion.V2_1)  # compiled once at start, as in the worker
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                 timeout=300.0) as client:
        for _ in range(100):
            try:
                await client.get("/sandbox/stats")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        connector = VitamConnector(client, ArchiveSettings(tenant=1, archival_agency="V"),
                                   member="212102313")
        spec = TransferSpec(version=SedaVersion.V2_1, message_identifier="BENCH-1",
                            archival_agency="V", transferring_agency="RELAIS",
                            originating_agency="212102313", units=(UnitSpec(
                                "Plan local d'urbanisme", documents=(DocumentSpec(
                                    ref.sha256, ref.filename, ref.media_type),)),))
        baseline = _status_kb("VmRSS")
        _reset_peak()
        started = time.monotonic()
        sip = await prepare_sip(spec, store.open, now=datetime.now(UTC))
        operation = await connector.upload(sip.stream(), sip.length,
                                           message_identifier="BENCH-1")
        sent = time.monotonic() - started
        peak = _status_kb("VmHWM")
        for _ in range(600):
            state = await connector.operation(operation)
            if state.completed or state.stuck:
                break
            await asyncio.sleep(0.5)
        reply = await connector.transfer_reply(operation)
    growth_mb = (peak - baseline) / 1024
    print(f"document: {megabytes} MB; SIP: {sip.length / 1024 / 1024:.1f} MB sent in "
          f"{sent:.1f} s ({sip.length / 1024 / 1024 / sent:.0f} MB/s)")
    print(f"peak RSS growth during digest + manifest + upload: {growth_mb:.1f} MB "
          f"(baseline {baseline / 1024:.0f} MB, bar {BAR_MB:.0f} MB)")
    verdict = reply.reply_code if reply else "no ATR"
    print(f"archive verdict: {verdict} (operation {operation})")
    return 0 if growth_mb < BAR_MB and reply is not None and reply.accepted else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=150, help="document size in MB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "SPOOL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="relais-archive-bench-"))
    port = _free_port()
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.archive_large", "--serve",
                              str(port), str(workdir / "spool")])
    try:
        return asyncio.run(run(args.mb, workdir, port))
    finally:
        child.terminate()
        child.wait(timeout=10)
        if args.keep:
            print(f"kept {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
