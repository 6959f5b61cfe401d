"""`make demo` / `relais demo`: the whole hub on this machine, flows end to end.

Starts (or reuses) the local Kafka broker, applies the topic catalogue, registers
two demo members whose TdT is the sandbox, starts the sandbox TdT, the hub
worker and the API as child processes, then plays a member's back-office:

1. uploads a PDF through the hub API (token-authenticated);
2. submits an acte the prefecture acknowledges and later writes about
   (a prefecture letter is delivered, linked to the acte);
3. submits an acte the prefecture rejects with an anomaly;
4. submits an acte naming a blob never uploaded, and bytes that are not Avro:
   both are refused at once with reasons.

It prints every notification the member receives and each flow's history.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import httpx

from agents.acts.machines import BY_TYPE
from ops.demo_archive import archive_demo
from ops.demo_documents import minimal_pdf
from ops.demo_kit import member_session, register_for_demo, say
from ops.demo_pes import pes_demo
from ops.demo_registry import registry_demo
from ops.demo_signature import signature_demo
from ops.flows import flow_history
from ops.kafka.broker import LocalBroker
from ops.members import Registration, member_security
from ops.stack import (
    Stack,
    sandbox_config,
    sandbox_control_client,
    sandbox_member,
    sandbox_url,
    with_archive,
)
from ops.submissions import ActeDraft, publish_acte, publish_raw
from relais.blobs.model import BlobRef
from relais.errors import RelaisError
from relais.flows.ids import flow_id_for
from relais.flows.kit import Flow
from relais.logs import configure_logging
from relais.settings import Settings
from topics.catalogue import hub_topics
from topics.member import notifications, submissions

DEMO_MEMBERS = (
    ("212102313", "Commune de Dijon (demo)", "021"),
    ("217100072", "Commune de Mâcon (demo)", "071"),
)
TERMINAL = {"acknowledged", "rejected", "cancelled", "failed", "uncertain"}


def show_notification(notification: dict[str, Any]) -> None:
    reasons = "; ".join(f"{r['field']}: {r['message']}" for r in notification["reasons"])
    docs = ", ".join(d["filename"] for d in notification["documents"])
    line = f"  [{notification['kind']:<15}] {notification['submission_id'] or '-':<14} " \
           f"{notification['state']:<12} {notification['message']}"
    if reasons:
        line += f"\n{'':22}reasons: {reasons}"
    if docs:
        line += f"\n{'':22}documents: {docs}"
    print(line, flush=True)


async def _register(settings: Settings, flows: Sequence[Flow]) -> list[Registration]:
    registrations = [with_archive(sandbox_member(settings, s, n, d), settings)
                     for s, n, d in DEMO_MEMBERS]
    await register_for_demo(settings, registrations,
                            topics=list(hub_topics(settings.app_id, flows)))
    return registrations


async def _set_faults(client: httpx.AsyncClient, settings: Settings, **knobs: float) -> None:
    response = await client.post(f"{sandbox_url(settings)}/sandbox/faults", json=knobs)
    response.raise_for_status()


def _has(notifications: list[dict[str, Any]], flow_id: str, *, state: str | None = None,
         kind: str | None = None) -> bool:
    return any(n["flow_id"] == flow_id and (state is None or n["state"] == state)
               and (kind is None or n["kind"] == kind) for n in notifications)


async def _scenario(settings: Settings, member: Registration) -> bool:
    siren = member.member.siren
    api = f"http://{settings.api_host}:{settings.api_port}"
    today = date.today()
    # ids unique to this run (the demo can rerun), upper case: S²LOW's number pattern
    run = format(int(time.time()) % 36**5, "X")
    # The back-office connects as the member's own Kafka user: its ACLs let it write its
    # submissions topic and read its notifications topic, nothing else.
    async with member_session(settings, member) as (watcher, publisher):
        async with sandbox_control_client(settings, timeout=30) as client:
            say(f"{member.member.name} uploads a deliberation through the hub API")
            response = await client.post(
                f"{api}/v1/blobs", content=minimal_pdf("Deliberation 2026-042"),
                headers={"Authorization": f"Bearer {member.token}",
                         "Content-Type": "application/pdf",
                         "X-Relais-Filename": "deliberation-2026-042.pdf"},
            )
            response.raise_for_status()
            up = response.json()
            print(f"  stored {up['filename']}: sha256 {up['sha256'][:16]}…, {up['size']} bytes")
            blob = BlobRef(up["sha256"], up["size"], up["media_type"], up["filename"])

            def acte(sid: str, numero: str, objet: str, nature: int = 1,
                     matieres: tuple[int, ...] = (7, 1), document: BlobRef = blob) -> ActeDraft:
                return ActeDraft(submission_id=sid, member_siren=siren, nature_code=nature,
                                 matieres=matieres, numero_interne=numero, decision_date=today,
                                 objet=objet, document=document)

            good = flow_id_for(siren, f"demo-ok-{run}")
            anomaly = flow_id_for(siren, f"demo-anomaly-{run}")
            say("acte 1: the sandbox prefecture will acknowledge it, then write about it")
            await _set_faults(client, settings, anomaly_rate=0.0, prefecture_message_rate=1.0)
            await publish_acte(publisher, acte(f"demo-ok-{run}", f"D{run}",
                                               "Budget supplémentaire 2026"))
            await watcher.wait_until(lambda got: _has(got, good, state="posted"), 60)
            say("acte 2: the sandbox prefecture will answer with an anomaly")
            await _set_faults(client, settings, anomaly_rate=1.0, prefecture_message_rate=0.0)
            await publish_acte(publisher, acte(f"demo-anomaly-{run}", f"A{run}",
                                               "Arrêté de voirie", nature=3, matieres=(6, 1)))
            await watcher.wait_until(lambda got: _has(got, anomaly, state="posted"), 60)
            await _set_faults(client, settings, anomaly_rate=0.0, prefecture_message_rate=0.0)
        say("acte 3 names a document never uploaded; record 4 is not Avro at all")
        missing = BlobRef("0" * 64, 1234, "application/pdf", "never-uploaded.pdf")
        await publish_acte(publisher, acte(f"demo-no-blob-{run}", f"C{run}", "Convention",
                                           nature=4, document=missing))
        await publish_raw(publisher, siren, f"demo-garbage-{run}", b"this is not Avro at all")
        refused = {flow_id_for(siren, f"demo-{k}-{run}") for k in ("no-blob", "garbage")}

        def done(got: list[dict[str, Any]]) -> bool:
            return (_has(got, good, state="acknowledged")
                    and any(n["flow_id"] == good and n["kind"] == "PARTNER_MESSAGE"
                            and "type_code" in n["details"] for n in got)  # a letter
                    and _has(got, anomaly, state="rejected")
                    and all(_has(got, f, state="rejected") for f in refused))

        await watcher.wait_until(done, 90)
    say(f"notifications received on the member's topic ({len(watcher.received)})")
    for notification in watcher.received:
        show_notification(notification)
    for flow_id in (good, anomaly):
        say(f"relais flows show {flow_id}")
        for event in await flow_history(settings.bootstrap_servers, flow_id, machines=BY_TYPE):
            child = event["details"].get("child_event")
            print(f"  {event['occurred_at']:%H:%M:%S}  {event['state']:<13}"
                  f"{' +' + child if child else ''}  by {event['stage']}"
                  f"{'  ' + event['partner_ref'] if event['partner_ref'] else ''}")
    return done(watcher.received)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(flows: Sequence[Flow], *, stay: bool = False) -> int:
    """Run the demo with a hub running ``flows``; 0 when every expected outcome was
    observed."""
    settings = Settings.from_env()
    configure_logging("console", "WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    broker = LocalBroker(settings)
    started_broker = False
    stack = Stack(settings, settings.data_dir / "logs")
    try:
        if not broker.external:
            say(f"starting Apache Kafka (KRaft) at {broker.bootstrap}")
            broker.ensure_jars()
            seconds = broker.start()
            started_broker = seconds > 0
            print(f"  ready in {seconds:.1f} s" if seconds else "  already running")
            if broker.auth:
                print(f"  SASL/SCRAM-SHA-512 and ACLs on; hub users in {broker.credentials_path}")
        say("applying the topic catalogue and registering the demo members")
        registrations = asyncio.run(_register(settings, flows))
        for registration in registrations:
            print(f"  {registration.member.siren} {registration.member.name}")
            tdt = registration.member.tdt
            if tdt is not None and tdt.cert_file:
                print(f"    TdT {tdt.url}, TLS client certificate {tdt.cert_file}")
            if member_security(registration, settings.bootstrap_servers).sasl:
                print(f"    Kafka user {registration.kafka_user}: writes "
                      f"{submissions(registration.member.siren).name}, reads "
                      f"{notifications(registration.member.siren).name}, nothing else")
        say("starting the sandbox TdT, the hub worker and the hub API")
        stack.start_sandbox(sandbox_config(registrations))
        started = time.monotonic()
        stack.start_worker()
        print(f"  worker ready in {time.monotonic() - started:.1f} s; logs in {stack.log_dir}")
        stack.start_api()
        ok = asyncio.run(_scenario(settings, registrations[0]))
        ok = asyncio.run(registry_demo(settings, stack, registrations[0],
                                       refusing=registrations[1])) and ok
        ok = asyncio.run(signature_demo(settings, stack, registrations[1])) and ok
        ok = asyncio.run(pes_demo(settings, stack, registrations[0])) and ok
        ok = asyncio.run(archive_demo(settings, stack, registrations[0])) and ok
        say("demo " + ("succeeded" if ok else "FAILED: an expected outcome did not arrive"))
        if stay:
            say("the hub keeps running; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    except RelaisError as exc:
        print(f"error: {exc.message}", flush=True)
        return 1
    finally:
        say("stopping")
        stopped = list(stack.processes)
        stack.stop()
        if started_broker:
            broker.stop()
            stopped.append("kafka")
        print(f"  stopped: {', '.join(stopped)}", flush=True)
