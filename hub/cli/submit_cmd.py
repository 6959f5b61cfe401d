"""`relais submit`: send an acte as a member's back-office would, and show the answers."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import typer

from hub.cli.common import load_settings, run
from ops.notifications import NotificationWatcher
from ops.submissions import ActeDraft, publish_acte, upload_file
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.kafka.publisher import Publisher
from relais.wire.avro_codec import AvroCodec


def submit(
    member: str = typer.Option(..., help="SIREN of the submitting member."),
    document: Path = typer.Option(..., exists=True, dir_okay=False, help="Main document (PDF)."),
    objet: str = typer.Option(..., help="Subject of the acte (1 to 499 characters)."),
    nature: int = typer.Option(1, help="Nature code: 1 DE, 2 AR, 3 AI, 4 CC, 5 BF, 6 AU."),
    matiere: list[int] = typer.Option([1, 1], help="Classification codes, level 1 first."),
    numero: str = typer.Option(..., help=(
        "Internal number (numéro interne) as S²LOW accepts it: 1 to 15 upper-case letters, "
        "digits or '_', neither starting nor ending with '_' (e.g. D2026_042).")),
    decision_date: str = typer.Option(date.today().isoformat(), help="YYYY-MM-DD."),
    annex: list[Path] = typer.Option([], exists=True, dir_okay=False, help="Annex files."),
    submission_id: str = typer.Option("", help="Your id for this submission (default: random)."),
    wait: float = typer.Option(15.0, help="Seconds to wait for notifications (0: don't)."),
) -> None:
    """Store the documents in the local blob store (as the hub API would), publish the
    ActeSubmission on the member's topic, and print the notifications that arrive for it
    within --wait seconds."""
    settings = load_settings()
    sid = submission_id or f"cli-{uuid.uuid4().hex[:12]}"

    async def go() -> list[dict[str, object]]:
        store = FilesystemBlobStore(settings.blob_dir)
        main = await upload_file(store, document, owner=member)
        annexes = tuple([(await upload_file(store, path, owner=member), None) for path in annex])
        draft = ActeDraft(
            submission_id=sid, member_siren=member, nature_code=nature,
            matieres=tuple(matiere), numero_interne=numero,
            decision_date=date.fromisoformat(decision_date), objet=objet, document=main,
            annexes=annexes,
        )
        codec = AvroCodec()
        watcher = NotificationWatcher(settings.bootstrap_servers, member, codec)
        await watcher.start()
        publisher = Publisher(settings.bootstrap_servers, codec, client_id="relais-cli")
        await publisher.start()
        try:
            await publish_acte(publisher, draft)
        finally:
            await publisher.stop()
        flow = flow_id_for(member, sid)
        typer.echo(f"submitted {sid} (flow {flow})")
        try:
            if wait > 0:
                await watcher.wait_until(
                    lambda got: any(n["flow_id"] == flow for n in got), wait
                )
            return [n for n in watcher.received if n["flow_id"] == flow]
        finally:
            await watcher.stop()

    for notification in run(go()):
        typer.echo(json.dumps(notification, default=str, ensure_ascii=False, indent=2))
