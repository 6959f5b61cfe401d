"""`relais`: the command line of the hub, for operators and members' integrators."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hub.cli import (
    acts_cmd,
    flows_cmd,
    kafka_cmd,
    members_cmd,
    ops_cmd,
    registry_cmd,
    run_cmd,
    submit_cmd,
    topics_cmd,
)
from hub.cli.common import fail
from relais.errors import RelaisError
from relais.settings import Settings

app = typer.Typer(
    help="Relais: the asynchronous integration hub of the platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(kafka_cmd.app, name="kafka")
app.add_typer(topics_cmd.app, name="topics")
app.add_typer(members_cmd.app, name="members")
app.add_typer(flows_cmd.app, name="flows")
app.add_typer(acts_cmd.app, name="classification")
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(ops_cmd.dlq_app, name="dlq")
app.add_typer(ops_cmd.connector_app, name="connector")
app.command("replay")(ops_cmd.replay_cmd)
app.command()(ops_cmd.health)
app.command()(run_cmd.worker)
app.command()(run_cmd.api)
app.command()(run_cmd.sandbox)
app.command()(submit_cmd.submit)


@app.command()
def config(
    markdown: bool = typer.Option(
        False, "--markdown", help="Print the README's table of settings and defaults instead."
    ),
) -> None:
    """Print the effective settings (secrets masked) and where each comes from."""
    if markdown:
        from ops.config_table import markdown_table

        typer.echo(markdown_table())
        return
    for env, value, default, help_text in Settings.from_env().describe():
        marker = "" if value == default else "   (set)"
        typer.echo(f"{env}={value}{marker}\n    {help_text}")


@app.command()
def parse(path: Path = typer.Argument(
        ..., help="An @CTES message or envelope, a PES_Aller or a PES_ACQUIT, or a SEDA "
             "ArchiveTransfer, ArchiveTransferReply or Acknowledgement (XML).")) -> None:
    """Identify an @CTES message or envelope, a PES_Aller or a PES_ACQUIT and print its key
    fields as JSON (for PES: header, counts, signed or not; each ACQUIT element's outcome)."""
    from hub.cli.parse_cmd import cap_process_memory, parse_file

    if not path.is_file():
        fail(f"{path} is not a readable file")
    cap_process_memory()
    try:
        summary = parse_file(path)
    except RelaisError as exc:
        fail(f"{path}: {exc.message}")
        return
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


@app.command()
def demo(
    stay: bool = typer.Option(False, help="Keep the hub running after the demo until Ctrl-C."),
) -> None:
    """Start Kafka, the sandbox partners and the hub, run a demo flow end to end, stop."""
    from hub.flows import FLOWS
    from ops.demo import run_demo

    raise typer.Exit(run_demo(FLOWS, stay=stay))


if __name__ == "__main__":
    app()
