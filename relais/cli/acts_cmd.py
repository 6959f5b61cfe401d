"""`relais classification show|refresh`: each member's @CTES classification."""

from __future__ import annotations

import typer

from agents.acts.classification import snapshot_record
from connectors.tdt.registry import TdtConnectors
from relais.actes.classification import parse_retour_classification
from relais.cli.common import fail, load_settings, run
from relais.kafka.compacted_view import CompactedView
from relais.kafka.publisher import Publisher
from relais.members.directory import MemberDirectory
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics.catalogue import ACTS_CLASSIFICATIONS

app = typer.Typer(help="The classification (nature and matière codes) of each member's préfecture.")


@app.command()
def show(siren: str) -> None:
    """The classification the hub keeps for a member: version date, natures, matières."""
    settings = load_settings()

    async def go() -> bytes | None:
        view: CompactedView[dict[str, object]] = CompactedView(
            settings.bootstrap_servers, AvroCodec(), topic=ACTS_CLASSIFICATIONS.name,
            schema_name="ClassificationSnapshot", parse=lambda record: record,
        )
        await view.start()
        await view.stop()
        snapshot = view.get(siren)
        return snapshot["xml"] if snapshot is not None else None  # type: ignore[return-value]

    xml = run(go())
    if xml is None:
        fail(f"no classification kept for {siren}; `relais classification refresh {siren}`")
        return
    classification = parse_retour_classification(xml)
    typer.echo(f"classification of {classification.date_version.isoformat()}")
    for nature in classification.natures:
        codes = ", ".join(sorted(t.code for t in nature.typologies))
        typer.echo(f"  nature {nature.code} {nature.abbreviation}  typologies: {codes}")
    typer.echo(f"  {len(classification.matiere_paths())} matière codes")


@app.command()
def refresh(siren: str) -> None:
    """Fetch the member's current classification from its TdT and keep it."""
    settings = load_settings()

    async def go() -> str:
        codec = AvroCodec()
        directory = MemberDirectory(settings.bootstrap_servers, codec)
        await directory.start()
        await directory.stop()
        member = directory.get(siren)
        if member is None:
            fail(f"no member {siren}")
            raise AssertionError
        connectors = TdtConnectors(timeout=settings.tdt_timeout_seconds)
        publisher = Publisher(settings.bootstrap_servers, codec, client_id="relais-cli")
        await publisher.start()
        try:
            xml = await connectors.for_member(member).fetch_classification()
            classification = parse_retour_classification(xml)
            await publisher.publish(
                ACTS_CLASSIFICATIONS.name, key=siren, schema_name="ClassificationSnapshot",
                record=snapshot_record(siren, xml, classification),
                headers=EventHeaders.new(source="/relais/ops/classification",
                                         type="fr.relais.acts.ClassificationSnapshot",
                                         subject=siren, flow_id=None),
            )
        finally:
            await publisher.stop()
            await connectors.aclose()
        return classification.date_version.isoformat()

    typer.echo(f"classification of {run(go())} kept for {siren}")
