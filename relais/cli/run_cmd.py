"""Long-running processes: `relais worker`, `relais api`, `relais sandbox`."""

from __future__ import annotations

import asyncio

import typer

from relais.cli.common import load_settings


def worker() -> None:
    """Run the hub worker (ingress, stream agents); stops cleanly on Ctrl-C or SIGTERM."""
    from relais.worker import run_worker

    run_worker(load_settings())


def api() -> None:
    """Run the hub API: authenticated blob uploads for members' back-offices."""
    from relais.api.app import create_api
    from relais.api.server import serve_api
    from relais.blobs.filesystem import FilesystemBlobStore
    from relais.members.directory import MemberDirectory
    from relais.wire.avro_codec import AvroCodec

    settings = load_settings()

    async def go() -> None:
        directory = MemberDirectory(settings.bootstrap_servers, AvroCodec())
        await directory.start()
        try:
            app = create_api(
                FilesystemBlobStore(settings.blob_dir),
                directory.authenticate,
                max_upload_bytes=settings.max_acte_bytes,
            )
            typer.echo(f"Relais API on http://{settings.api_host}:{settings.api_port}", err=True)
            await serve_api(app, settings.api_host, settings.api_port)
        finally:
            await directory.stop()

    asyncio.run(go())


def sandbox(
    config: str = typer.Option("", help="JSON file: accounts, schedule, faults (see README)."),
    port: int = typer.Option(0, help="Port (default: RELAIS_SANDBOX_TDT_PORT)."),
) -> None:
    """Run the sandbox TdT: a loopback server speaking the S²LOW API, with fault knobs."""
    import json
    from pathlib import Path

    from sandbox.tdt.config import SandboxConfig
    from sandbox.tdt.server import serve_tdt

    settings = load_settings()
    sandbox_config = (
        SandboxConfig.from_mapping(json.loads(Path(config).read_text(encoding="utf-8")))
        if config
        else SandboxConfig()
    )
    sandbox_config.check()
    chosen = port or settings.sandbox_tdt_port
    typer.echo(f"Sandbox TdT on http://{settings.sandbox_host}:{chosen}", err=True)
    asyncio.run(serve_tdt(sandbox_config, settings.sandbox_host, chosen))
