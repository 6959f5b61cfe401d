"""`relais flows show|list`: what became of each flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer

from hub.cli.common import fail, load_settings, run
from hub.flows import FLOWS
from ops.audit import current_operator
from ops.flows import FlowFilter, flow_history, history_lines, latest_states, state_line
from ops.resolve import resolve_on_kafka
from relais.flows.kit import machines_of

app = typer.Typer(help="Inspect flows (one flow's history, the flows in a given state) and "
                  "settle uncertain ones.")


def _since(value: str) -> datetime | None:
    if not value:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since takes 30m, 2h, 7d or an ISO date-time, not {value!r}")
        raise
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def show(flow_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every event of one flow, oldest first; exit 1 when the flow is unknown."""
    settings = load_settings()
    events = run(flow_history(settings.bootstrap_servers, flow_id, machines=machines_of(FLOWS)))
    if not events:
        fail(f"no flow {flow_id}")
    if as_json:
        typer.echo(json.dumps(events, default=str, indent=2, ensure_ascii=False))
        return
    for line in history_lines(flow_id, events):
        typer.echo(line)


@app.command("list")
def list_flows(
    member: str = typer.Option("", help="Only this member's flows (SIREN)."),
    flow_type: str = typer.Option("", "--type", help="acte, acte-followup, unknown."),
    state: str = typer.Option("", help="received, validated, posted, transmitted, "
                              "acknowledged, rejected, cancelled, sent, failed, uncertain."),
    stage: str = typer.Option("", help="The stage that made the last transition."),
    error: str = typer.Option("", help="Error code or reason sub-code prefix, e.g. anomalie, "
                              "partner_, member_mismatch or blob_not_found."),
    since: str = typer.Option("", help="30m, 2h, 7d or an ISO date-time."),
    limit: int = typer.Option(50, help="At most this many lines (0: all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The latest state of the flows that match, most recent first."""
    settings = load_settings()
    flow_filter = FlowFilter(
        member=member or None, flow_type=flow_type or None, state=state or None,
        stage=stage or None, error_code=error or None, since=_since(since),
    )
    found = run(latest_states(settings.bootstrap_servers, flow_filter))
    shown = found[:limit] if limit else found
    if as_json:
        typer.echo(json.dumps(shown, default=str, indent=2, ensure_ascii=False))
        return
    for flow in shown:
        typer.echo(state_line(flow))
    typer.echo(f"{len(found)} flows match" + (f", {len(shown)} shown" if len(shown) < len(found)
                                              else ""))


@app.command()
def resolve(
    flow_id: str,
    posted: str = typer.Option("", "--posted", metavar="TRANSACTION_ID",
                               help="The acte is at the TdT under this transaction id."),
    not_posted: bool = typer.Option(False, "--not-posted",
                                    help="The TdT never received the acte: post it once more."),
    reason: str = typer.Option("", help="Why (audited; required with --not-posted)."),
) -> None:
    """Settle a flow parked uncertain, after checking on the TdT; audited under
    RELAIS_OPERATOR. Exit 1 when the flow is not uncertain."""
    if bool(posted) == not_posted:
        fail("give either --posted TRANSACTION_ID or --not-posted --reason '…'")
    settings = load_settings()
    done = run(resolve_on_kafka(settings, flow_id, transaction_id=posted or None,
                                operator=current_operator(), reason=reason))
    if done.transaction_id is not None:
        typer.echo(f"flow {flow_id} (acte {done.id_acte}) is posted as transaction "
                   f"{done.transaction_id}; its status is polled from now on "
                   f"(audit run {done.run_id})")
    else:
        typer.echo(f"flow {flow_id} (acte {done.id_acte}) is validated again and goes back to "
                   f"acts-delivery for one fresh post (audit run {done.run_id})")
