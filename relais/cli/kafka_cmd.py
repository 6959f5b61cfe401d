"""`relais kafka up|down|status|wipe`: the project's own local broker."""

from __future__ import annotations

import typer

from ops.kafka.broker import KAFKA_VERSION, LocalBroker
from relais.cli.common import fail, load_settings
from relais.errors import RelaisError

app = typer.Typer(help="Start and stop the local Apache Kafka broker (KRaft, single node).")


def _broker() -> LocalBroker:
    settings = load_settings()
    broker = LocalBroker(settings)
    if broker.external:
        fail(
            f"RELAIS_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: Relais uses that cluster; "
            "no local broker to manage."
        )
    return broker


@app.command()
def up(timeout: float = typer.Option(90.0, help="Seconds to wait for the broker.")) -> None:
    """Fetch the Kafka jars if needed, then start the broker and wait until it answers."""
    broker = _broker()
    try:
        broker.ensure_jars()
        seconds = broker.start(timeout=timeout)
    except RelaisError as exc:
        fail(exc.message)
    if seconds == 0:
        typer.echo(f"Kafka {KAFKA_VERSION} already running at {broker.bootstrap}")
    else:
        typer.echo(f"Kafka {KAFKA_VERSION} ready at {broker.bootstrap} in {seconds:.1f} s")


@app.command()
def down() -> None:
    """Stop the broker (SIGTERM, then SIGKILL after a timeout)."""
    broker = _broker()
    stopped = broker.stop()
    typer.echo("Kafka stopped" if stopped else "Kafka was not running")


@app.command()
def status() -> None:
    """Say whether the broker runs; exit 1 when it does not."""
    broker = _broker()
    state = broker.status()
    if state.running:
        typer.echo(f"running: Kafka {state.version} pid {state.pid} at {state.bootstrap}")
    else:
        typer.echo(f"stopped (data dir {broker.home})")
        raise typer.Exit(1)


@app.command()
def wipe(yes: bool = typer.Option(False, "--yes", help="Confirm.")) -> None:
    """Stop the broker and delete its data (every topic and record)."""
    if not yes:
        fail("this deletes every topic and record of the local broker; pass --yes")
    _broker().wipe()
    typer.echo("Kafka data deleted")
