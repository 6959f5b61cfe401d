"""`relais registry lookup|forget`: who a SIREN or SIRET is, for operators.

Through the hub's own look-up service: the hub-wide cache first, else a look-up handed to
the worker that owns the registry's partition (its quota bucket and breaker), whose
answer arrives on the cache topic (:func:`agents.registry.ask.ask_registry`). The command
never calls a registry itself, so the cluster-wide quota stays honest however many
operators ask. ``forget`` drops a number from the hub-wide cache (a tombstone in every
look-up registry), so its next look-up asks the registry again.
"""

from __future__ import annotations

import json

import typer

from agents.registry.answers import answer_details, answer_message
from agents.registry.ask import ask_registry, forget_number
from hub.cli.common import fail, load_settings, run
from relais.wire.avro_codec import AvroCodec

app = typer.Typer(help="Business registries (INSEE Sirene, API Entreprise): operators' look-ups.")


@app.command()
def lookup(
    identifier: str = typer.Argument(..., help="A SIREN (9 digits) or SIRET (14 digits)."),
    registry: str = typer.Option("sirene", help="sirene or entreprise."),
    timeout: float = typer.Option(
        60.0, help="Seconds to wait for the registry when the cache does not know the number."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the answer's fields as JSON."),
) -> None:
    """Print the registry's answer and whether it came from the hub-wide cache."""
    if registry not in ("sirene", "entreprise"):
        fail("--registry is sirene or entreprise")
    settings = load_settings()
    try:
        asked = run(ask_registry(settings.bootstrap_servers, AvroCodec(), identifier,
                                 registry=registry, timeout=timeout))
    except ValueError as exc:
        fail(f"{identifier}: {exc}")
        return
    if asked.entry is None:
        typer.echo(f"{asked.number}: pending: {registry} was not reached within {timeout:.0f} s "
                   "(quota in use, circuit open, or no worker running); the answer will be "
                   "in the cache, ask again later")
        raise typer.Exit(2)
    details = answer_details(asked.entry, from_cache=asked.from_cache)
    if as_json:
        typer.echo(json.dumps(details, indent=2, ensure_ascii=False, sort_keys=True))
        return
    source = "from the cache" if asked.from_cache else f"from {registry}, now cached"
    typer.echo(f"{answer_message(asked.entry)} ({source})")
    for key in ("kind", "name", "legal_category", "naf", "active", "closed_on", "diffusion",
                "street", "postal_code", "commune", "commune_code", "masked"):
        if key in details:
            typer.echo(f"  {key:<15} {details[key]}")


@app.command()
def forget(
    identifier: str = typer.Argument(..., help="A SIREN (9 digits) or SIRET (14 digits)."),
) -> None:
    """Drop a number from the hub-wide cache in every registry: its next look-up asks the
    registry again (through the owner's quota)."""
    settings = load_settings()
    try:
        keys = run(forget_number(settings.bootstrap_servers, AvroCodec(), identifier))
    except ValueError as exc:
        fail(f"{identifier}: {exc}")
        return
    typer.echo(f"forgotten: {', '.join(keys)} (tombstones on the cache topic; the next "
               "look-up asks the registry again)")
