"""`relais topics apply|check|list`: the topic catalogue against the cluster."""

from __future__ import annotations

import typer

from hub.cli.common import load_settings, run
from hub.flows import FLOWS
from ops.topics import apply_topics, check_topics
from relais.kafka.admin import admin_client
from relais.members.directory import MemberDirectory
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import hub_topics
from topics.member import member_topics
from topics.spec import TopicSpec

app = typer.Typer(help="Create, update and check the hub's topics.")


async def _declared(bootstrap: str, app_id: str, with_members: bool) -> list[TopicSpec]:
    specs = list(hub_topics(app_id, FLOWS))
    if with_members:
        directory = MemberDirectory(bootstrap, AvroCodec())
        await directory.start()
        try:
            for member in directory.all():
                specs.extend(member_topics(member.siren))
        finally:
            await directory.stop()
    return specs


@app.command()
def apply(
    members: bool = typer.Option(True, help="Also the topics of every registered member."),
) -> None:
    """Create missing topics and bring configs in line with the catalogue (idempotent)."""
    settings = load_settings()

    async def go() -> None:
        async with admin_client(settings.bootstrap_servers) as admin:
            hub = list(hub_topics(settings.app_id, FLOWS))
            report = await apply_topics(admin, hub)
            if members:
                specs = await _declared(settings.bootstrap_servers, settings.app_id, True)
                more = await apply_topics(admin, specs[len(hub):])
                report.created += more.created
                report.updated += more.updated
                report.unchanged += more.unchanged
                report.drift_left += more.drift_left
        typer.echo(
            f"created {len(report.created)}, updated {len(report.updated)}, "
            f"unchanged {len(report.unchanged)}"
        )
        for name in report.created:
            typer.echo(f"  + {name}")
        for name in report.updated:
            typer.echo(f"  ~ {name}")
        for drift in report.drift_left:
            typer.echo(f"  ! {drift.topic}: {drift.what} declared {drift.declared}, "
                       f"is {drift.actual} (cannot be fixed automatically)")

    run(go())


@app.command()
def check(
    members: bool = typer.Option(True, help="Also the topics of every registered member."),
) -> None:
    """Report every difference between the catalogue and the cluster; exit 1 on drift."""
    settings = load_settings()

    async def go() -> int:
        specs = await _declared(settings.bootstrap_servers, settings.app_id, members)
        async with admin_client(settings.bootstrap_servers) as admin:
            drift = await check_topics(admin, specs)
        for item in drift:
            typer.echo(f"{item.topic}: {item.what} declared {item.declared}, is {item.actual}")
        typer.echo(f"{len(specs)} topics checked, {len(drift)} differences")
        return len(drift)

    if run(go()):
        raise typer.Exit(1)


@app.command("list")
def list_topics() -> None:
    """Print the hub's declared topics with their contract."""
    settings = load_settings()
    for spec in hub_topics(settings.app_id, FLOWS):
        typer.echo(f"{spec.name}  partitions={spec.partitions} cleanup={spec.cleanup_policy} "
                   f"key=<{spec.key}> value={spec.value_schema}\n    {spec.doc}")
    for spec in member_topics("<siren>"):
        typer.echo(f"{spec.name}  partitions={spec.partitions} value={spec.value_schema}  "
                   f"(one per member)\n    {spec.doc}")
