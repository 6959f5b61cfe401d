"""`relais classification show|refresh`: each member's @CTES classification."""

from __future__ import annotations

import json

import typer

from hub.cli.common import fail, load_settings, run
from ops.classification import as_dict, as_lines, kept_classification, refresh

app = typer.Typer(help="The classification (nature, matière and typology codes) of each "
                  "member's préfecture.")


@app.command()
def show(siren: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The codes a member's actes may use: natures with their typologies, and the matières
    tree with labels, from the classification the hub keeps for it."""
    settings = load_settings()
    classification = run(kept_classification(settings, siren))
    if classification is None:
        fail(f"no classification kept for {siren}; `relais classification refresh {siren}`")
        return
    if as_json:
        typer.echo(json.dumps({"member_siren": siren, **as_dict(classification)}, indent=2,
                              ensure_ascii=False))
        return
    for line in as_lines(siren, classification):
        typer.echo(line)


@app.command("refresh")
def refresh_cmd(siren: str) -> None:
    """Fetch the member's current classification from its TdT and keep it."""
    settings = load_settings()
    classification = run(refresh(settings, siren))
    typer.echo(f"classification of {classification.date_version.isoformat()} kept for {siren}")
