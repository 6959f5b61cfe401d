"""The demo's signature part (issue 10), called once by ``ops/demo.py``:

a member's i-Parapheur signs its actes before they leave. The member gets an
``iparapheur`` account on the sandbox i-Parapheur (type ``ACTES``, sub-type
``Deliberation``), then submits two actes: the signer signs the first, which goes on to
the sandbox TdT with its detached signature and is acknowledged; the signer rejects the
second, which comes back to the member as REJECTED with the annotation and the signer's
name. Each dossier's fate is set through the sandbox's ``/sandbox/fates``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path
from typing import Any

from agents.acts.machines import BY_TYPE
from connectors.iparapheur.ids import dossier_id_for
from ops.demo_kit import member_session, register_for_demo, say, upload_pdf
from ops.flows import flow_history
from ops.members import Registration
from ops.stack import Stack, iparapheur_url, sandbox_control_client, with_iparapheur
from ops.submissions import ActeDraft, publish_acte
from relais.flows.ids import flow_id_for
from relais.settings import Settings

#: The official WSDL the members' connectors load (the sandbox holds no copy of it).
WSDL = (Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "iparapheur"
        / "iparapheur.xml.wsdl").resolve()
SETTINGS = {"acte.type": "ACTES", "acte.sub_type": "Deliberation", "wsdl": str(WSDL)}
MEMBER_VIEW_SECONDS = 5.0  # time for the hub's member directory to see the new account


def _has(got: list[dict[str, Any]], flow_id: str, state: str, kind: str | None = None) -> bool:
    return any(n["flow_id"] == flow_id and n["state"] == state
               and (kind is None or n["kind"] == kind) for n in got)


async def signature_demo(settings: Settings, stack: Stack, member: Registration) -> bool:
    """Run the signature scenario for ``member``; True when both outcomes arrived."""
    if not WSDL.is_file():
        print(f"  skipped: the i-Parapheur WSDL is not at {WSDL}")
        return False
    signing = with_iparapheur(member, settings, SETTINGS, tls=stack.tls)
    siren = signing.member.siren
    say(f"{signing.member.name} signs its actes in i-Parapheur before the TdT")
    account = signing.member.account("iparapheur")
    print(f"  i-Parapheur {account.url if account else '?'}: type ACTES, sub-type "
          "Deliberation")
    await register_for_demo(settings, [signing])
    await asyncio.sleep(MEMBER_VIEW_SECONDS)
    blob = await upload_pdf(settings, signing, "Deliberation a signer",
                            "deliberation-a-signer.pdf")
    run = format(int(time.time()) % 36**5, "X")
    signed = flow_id_for(siren, f"demo-signed-{run}")
    rejected = flow_id_for(siren, f"demo-unsigned-{run}")
    async with sandbox_control_client(settings, timeout=30) as control:
        response = await control.post(
            f"{iparapheur_url(settings, tls=stack.tls)}/sandbox/fates",
            json={dossier_id_for(signed): "sign", dossier_id_for(rejected): "reject_signer"})
        response.raise_for_status()
    async with member_session(settings, signing) as (watcher, publisher):
        for sid, numero, objet in ((f"demo-signed-{run}", f"S{run}", "Délibération signée"),
                                   (f"demo-unsigned-{run}", f"U{run}", "Délibération refusée")):
            await publish_acte(publisher, ActeDraft(
                submission_id=sid, member_siren=siren, nature_code=1, matieres=(7, 1),
                numero_interne=numero, decision_date=date.today(), objet=objet,
                document=blob))
        print("  acte 1: the signer will sign it; acte 2: the signer will reject it")

        def done(got: list[dict[str, Any]]) -> bool:
            return (_has(got, signed, "signed") and _has(got, signed, "acknowledged")
                    and _has(got, rejected, "rejected", "REJECTED"))

        await watcher.wait_until(done, 120)
    say(f"notifications of the signed and rejected actes ({len(watcher.received)})")
    for note in watcher.received:
        if note["flow_id"] not in (signed, rejected):
            continue
        print(f"  [{note['kind']:<15}] {note['submission_id']:<20} {note['state']:<12} "
              f"{note['message']}")
        if note["kind"] == "REJECTED":
            details = note["details"]
            print(f"{'':22}annotation: {details.get('annotation')}; "
                  f"signer: {details.get('signer')}")
    for flow_id in (signed, rejected):
        say(f"relais flows show {flow_id}")
        for event in await flow_history(settings.bootstrap_servers, flow_id, machines=BY_TYPE):
            print(f"  {event['occurred_at']:%H:%M:%S}  {event['state']:<13} by "
                  f"{event['stage']}")
    return done(watcher.received)
