"""`make demo` / `relais demo`: the whole hub on this machine, one flow end to end.

Starts (or reuses) the local Kafka broker, applies the topic catalogue, registers
two demo members, starts the hub worker and API as child processes, then plays a
member's back-office: uploads a PDF through the API, submits a valid acte, a
malformed record and an acte naming a blob that was never uploaded, and prints
the notifications the member receives. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import date
from typing import Any

import httpx

from ops.demo_documents import minimal_pdf
from ops.kafka.broker import LocalBroker
from ops.members import Registration, new_member, register_members
from ops.notifications import NotificationWatcher
from ops.processes import ManagedProcess
from ops.submissions import ActeDraft, publish_acte, publish_raw
from ops.topics import apply_topics
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.kafka.admin import admin_client
from relais.kafka.publisher import Publisher
from relais.logs import configure_logging
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from topics.catalogue import hub_topics

DEMO_MEMBERS = (
    ("212102313", "Commune de Dijon (demo)", "021"),
    ("217100072", "Commune de Mâcon (demo)", "071"),
)


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show_notification(notification: dict[str, Any]) -> None:
    reasons = "; ".join(f"{r['field']}: {r['message']}" for r in notification["reasons"])
    line = f"  [{notification['kind']}] {notification['state']}: {notification['message']}"
    print(line + (f"\n      reasons: {reasons}" if reasons else ""), flush=True)


async def _register(settings: Settings) -> list[Registration]:
    registrations = [new_member(s, n, d) for s, n, d in DEMO_MEMBERS]
    publisher = Publisher(settings.bootstrap_servers, AvroCodec(), client_id="relais-demo")
    await publisher.start()
    try:
        async with admin_client(settings.bootstrap_servers) as admin:
            await apply_topics(admin, list(hub_topics(settings.app_id)))
            await register_members(admin, publisher, registrations)
    finally:
        await publisher.stop()
    return registrations


async def _scenario(settings: Settings, registrations: list[Registration]) -> bool:
    member = registrations[0]
    siren = member.member.siren
    codec = AvroCodec()
    api = f"http://{settings.api_host}:{settings.api_port}"
    say(f"{member.member.name} uploads its deliberation through the hub API")
    pdf = minimal_pdf("Deliberation 2026-042: budget supplementaire")
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{api}/v1/blobs",
            content=pdf,
            headers={
                "Authorization": f"Bearer {member.token}",
                "Content-Type": "application/pdf",
                "X-Relais-Filename": "deliberation-2026-042.pdf",
            },
        )
    response.raise_for_status()
    uploaded = response.json()
    print(f"  stored {uploaded['filename']}: sha256 {uploaded['sha256'][:16]}…, "
          f"{uploaded['size']} bytes")
    blob = BlobRef(uploaded["sha256"], uploaded["size"], uploaded["media_type"],
                   uploaded["filename"])
    today = date.today()
    valid = ActeDraft(
        submission_id="demo-acte-1", member_siren=siren, nature_code=1, matieres=(7, 1),
        numero_interne="D2026_042", decision_date=today,
        objet="Budget supplémentaire 2026", document=blob, document_typology="99_DE",
    )
    missing_blob = BlobRef("0" * 64, 1234, "application/pdf", "never-uploaded.pdf")
    broken = ActeDraft(
        submission_id="demo-acte-2", member_siren=siren, nature_code=3, matieres=(4, 1),
        numero_interne="A2026_007", decision_date=today, objet="Arrêté de nomination",
        document=missing_blob,
    )
    watcher = NotificationWatcher(settings.bootstrap_servers, siren, codec)
    await watcher.start()
    publisher = Publisher(settings.bootstrap_servers, codec, client_id="relais-demo")
    await publisher.start()
    try:
        say("the back-office publishes: a valid acte, an acte naming a blob never uploaded, "
            "and a malformed record")
        await publish_acte(publisher, valid)
        await publish_acte(publisher, broken)
        await publish_raw(publisher, siren, "demo-garbage", b"this is not Avro at all")
        expected = {flow_id_for(siren, key) for key in
                    ("demo-acte-1", "demo-acte-2", "demo-garbage")}
        await watcher.wait_until(
            lambda got: expected <= {n["flow_id"] for n in got}, timeout=60
        )
    finally:
        await publisher.stop()
        await watcher.stop()
    say(f"notifications received on relais.member.{siren}.notifications")
    for notification in watcher.received:
        show_notification(notification)
    got = {n["flow_id"] for n in watcher.received}
    if not expected <= got:
        print(f"  missing notifications for {sorted(expected - got)}", flush=True)
        return False
    return True


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(*, stay: bool = False) -> int:
    """Run the demo; 0 when every expected notification arrived."""
    settings = Settings.from_env()
    configure_logging("console", "WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    broker = LocalBroker(settings)
    started_broker = False
    processes: list[ManagedProcess] = []
    logs = settings.data_dir / "logs"
    try:
        if not broker.external:
            say(f"starting Apache Kafka (KRaft) at {broker.bootstrap}")
            broker.ensure_jars()
            seconds = broker.start()
            started_broker = seconds > 0
            print(f"  ready in {seconds:.1f} s" if seconds else "  already running")
        say("applying the topic catalogue and registering demo members")
        registrations = asyncio.run(_register(settings))
        for registration in registrations:
            print(f"  {registration.member.siren} {registration.member.name}")
        say("starting the hub worker and API")
        env = {"RELAIS_LOG_FORMAT": "json"}
        worker = ManagedProcess("worker", ["worker"], env, logs / "worker.log")
        api = ManagedProcess("api", ["api"], env, logs / "api.log")
        processes += [worker, api]
        for process in processes:
            process.start()
        worker_ready = worker.wait_for("ingress.started", timeout=120)
        api.wait_for("Relais API on", timeout=60)
        print(f"  worker ready in {worker_ready:.1f} s; logs in {logs}")
        ok = asyncio.run(_scenario(settings, registrations))
        say("demo " + ("succeeded" if ok else "FAILED"))
        if stay:
            say("the hub keeps running; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    finally:
        say("stopping")
        for process in reversed(processes):
            process.stop()
        if started_broker:
            broker.stop()
        print(json.dumps({"stopped": [p.name for p in processes]
                          + (["kafka"] if started_broker else [])}), flush=True)
