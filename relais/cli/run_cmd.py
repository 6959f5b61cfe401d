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
