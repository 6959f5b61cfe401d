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
    from hub.api import serve_hub_api

    asyncio.run(serve_hub_api(load_settings(), lambda line: typer.echo(line, err=True)))


def sandbox(
    config: list[str] = typer.Option(
        [], help="JSON configuration of a sandbox: NAME=FILE (repeatable), or FILE alone for "
        "the TdT (accounts, schedule, faults; see docs/sandbox-tdt.md)."
    ),
    only: str = typer.Option(
        "", help="Comma-separated sandboxes to start (default: every registered one), e.g. tdt."
    ),
    port: int = typer.Option(
        0, help="Base port: a sandbox without its own RELAIS_SANDBOX_<NAME>_PORT setting "
        "listens on it plus its offset (default: RELAIS_SANDBOX_TDT_PORT)."
    ),
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
    """Run the partner sandboxes (sandbox/catalogue.py), each on its own loopback port, with
    fault knobs and /sandbox/... control endpoints.

    HTTPS with a required TLS client certificate, as on S²LOW; HTTP Basic is optional. All
    sandboxes share the TLS material. First run: a throwaway CA, a server certificate and one
    client certificate per account (CN = login, key encrypted with the password in
    <tls-dir>/client-key-password).
    """
    from pathlib import Path

    from relais.errors import ConfigurationError
    from sandbox.catalogue import by_name
    from sandbox.common.partner import BASE_PORT
    from sandbox.common.server import SandboxTls, ServedSandbox, serve_sandboxes, shared_tls

    settings = load_settings()
    if client_cert not in ("required", "optional"):
        fail("--client-cert is required or optional")
    try:
        partners = by_name(only)
    except KeyError as exc:
        fail(f"--only: no such sandbox: {exc.args[0]}")
    files: dict[str, Path] = {}
    for item in config:
        name, _, path = item.partition("=") if "=" in item else ("tdt", "", item)
        files[name] = Path(path)
    unknown = set(files) - {p.name for p in partners}
    if unknown:
        fail(f"--config for a sandbox not started: {', '.join(sorted(unknown))}")
    base = port or getattr(settings, "sandbox_tdt_port", BASE_PORT)
    served: list[ServedSandbox] = []
    for partner in partners:
        own = getattr(settings, partner.port_setting, None)
        chosen = base + partner.port_offset if port or own is None else int(own)
        try:
            built = partner.create(files.get(partner.name))
        except ConfigurationError as exc:
            fail(f"sandbox {partner.name}: {exc}")
        served.append(ServedSandbox(partner.name, built.app, built.accounts, chosen,
                                    client_certificates=partner.client_certificates))
    tls: SandboxTls | None = None
    scheme = "http"
    if not no_tls:
        scheme = "https"
        directory = Path(tls_dir) if tls_dir else settings.data_dir / "sandbox" / "tls"
        hosts = [h for h in [settings.sandbox_host, *tls_host] if h not in ("0.0.0.0", "::")]
        logins = [login for s in served for login in s.accounts]
        tls = shared_tls(directory, logins, hosts=hosts,
                         require_client_certificate=client_cert == "required")
    for partner, s in zip(partners, served, strict=True):
        typer.echo(f"Sandbox {s.name} ({partner.title}) on "
                   f"{scheme}://{settings.sandbox_host}:{s.port}", err=True)
    if tls is not None:
        material = tls.material
        typer.echo(f"  client certificate {client_cert}; CA: {material.ca_file}", err=True)
        for login, credentials in sorted(material.clients.items()):
            if any(login in s.accounts for s in served):
                typer.echo(f"  account {login}: --tdt-cert {credentials.cert_file} "
                           f"--tdt-key {credentials.key_file}", err=True)
        typer.echo(f"  client key password: in {material.directory / 'client-key-password'}",
                   err=True)
    asyncio.run(serve_sandboxes(served, settings.sandbox_host, tls=tls))
