"""`relais kafka up|down|status|wipe`: the project's own local broker."""

from __future__ import annotations

import typer

from hub.cli.common import fail, load_settings, run
from ops.kafka.broker import KAFKA_VERSION, LocalBroker, grant_hub
from relais.errors import RelaisError
from relais.kafka.security import HUB_USER, security_for

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
    if broker.auth:
        typer.echo(f"SASL/SCRAM-SHA-512 and ACLs on; users relais-admin and relais-hub in "
                   f"{broker.credentials_path}")
    else:
        typer.echo("no authentication (RELAIS_KAFKA_AUTH=off)")


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


@app.command("grant-hub")
def grant_hub_cmd(
    user: str = typer.Option(HUB_USER, help="The hub processes' SASL user."),
) -> None:
    """Give the hub's user its ACLs on the configured cluster (run as a super user).

    Topics prefixed `relais.`: read, write, describe; groups and transactional ids
    prefixed `relais-` (and RELAIS_APP_ID): read/write, describe. No topic creation.
    The local broker does this at each start; use it on an existing secured cluster.
    """
    settings = load_settings()
    security = security_for(settings.bootstrap_servers)
    if not security.sasl:
        fail("the cluster does not use SASL (RELAIS_KAFKA_SECURITY_PROTOCOL): no ACLs to grant")
    run(grant_hub(settings.bootstrap_servers, security, user, settings.app_id))
    typer.echo(f"ACLs of User:{user} in place (app id {settings.app_id})")
