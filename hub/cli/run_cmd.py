"""Long-running processes: `relais worker`, `relais api`, `relais sandbox`."""

from __future__ import annotations

import asyncio

import typer

from hub.cli.common import fail, load_settings


def worker() -> None:
    """Run the hub worker (ingress, stream agents); stops cleanly on Ctrl-C or SIGTERM."""
    from hub.worker import run_worker

    run_worker(load_settings())


def api() -> None:
    """Run the hub API: authenticated blob uploads for members' back-offices."""
    from relais.api.app import create_api
    from relais.api.limits import ServerLimits
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
                body_timeout=settings.api_body_timeout_seconds,
            )
            limits = ServerLimits(
                max_total=settings.api_max_connections,
                max_per_client=settings.api_max_connections_per_client,
                header_timeout=settings.api_header_timeout_seconds,
            )
            typer.echo(f"Relais API on http://{settings.api_host}:{settings.api_port}", err=True)
            await serve_api(app, settings.api_host, settings.api_port, limits=limits)
        finally:
            await directory.stop()

    asyncio.run(go())


def sandbox(
    config: str = typer.Option("", help="JSON file: accounts, schedule, faults (see README)."),
    port: int = typer.Option(0, help="Port (default: RELAIS_SANDBOX_TDT_PORT)."),
    tls_dir: str = typer.Option(
        "", help="Where the throwaway CA, server and client certificates live (created on first "
        "run; default: <RELAIS_DATA_DIR>/sandbox/tls)."
    ),
    no_tls: bool = typer.Option(False, "--no-tls", help="Serve plain HTTP (tests, old clients)."),
    client_cert: str = typer.Option(
        "required", help="required: no connection without a client certificate of the sandbox "
        "CA (like S²LOW); optional: HTTP Basic alone is accepted too."
    ),
    tls_host: list[str] = typer.Option(
        [], help="Extra name or address of the server certificate (repeatable), e.g. sandbox."
    ),
) -> None:
    """Run the sandbox TdT: a loopback server speaking the S²LOW API, with fault knobs.

    HTTPS with a required TLS client certificate, as on S²LOW; HTTP Basic is optional.

    First run: a throwaway CA, a server certificate and one client certificate per account
    (CN = login, key encrypted with the password in <tls-dir>/client-key-password).
    """
    import json
    from pathlib import Path

    from sandbox.tdt.config import SandboxConfig
    from sandbox.tdt.server import SandboxTls, sandbox_tls, serve_tdt

    settings = load_settings()
    if client_cert not in ("required", "optional"):
        fail("--client-cert is required or optional")
    sandbox_config = (
        SandboxConfig.from_mapping(json.loads(Path(config).read_text(encoding="utf-8")))
        if config
        else SandboxConfig()
    )
    sandbox_config.check()
    chosen = port or settings.sandbox_tdt_port
    tls: SandboxTls | None = None
    if not no_tls:
        directory = Path(tls_dir) if tls_dir else settings.data_dir / "sandbox" / "tls"
        hosts = [h for h in [settings.sandbox_host, *tls_host] if h not in ("0.0.0.0", "::")]
        tls = sandbox_tls(directory, sandbox_config, hosts=hosts,
                          require_client_certificate=client_cert == "required")
        material = tls.material
        typer.echo(f"Sandbox TdT on https://{settings.sandbox_host}:{chosen} "
                   f"(client certificate {client_cert})", err=True)
        typer.echo(f"  CA: {material.ca_file}", err=True)
        for login, credentials in sorted(material.clients.items()):
            typer.echo(f"  account {login}: --tdt-cert {credentials.cert_file} "
                       f"--tdt-key {credentials.key_file}", err=True)
        typer.echo(f"  client key password: in {material.directory / 'client-key-password'}",
                   err=True)
    else:
        typer.echo(f"Sandbox TdT on http://{settings.sandbox_host}:{chosen}", err=True)
    asyncio.run(serve_tdt(sandbox_config, settings.sandbox_host, chosen, tls=tls))
