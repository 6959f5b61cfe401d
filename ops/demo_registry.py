"""The demo's business-registry part (issue 11), called once by ``ops/demo.py``:

1. a commune of the sandbox Sirene is registered as a member with only its SIREN: its
   name, legal category and commune come from Sirene, through the hub's look-up service
   (the same path as ``relais members add``);
2. a member submits a contract (nature 4, CC) naming two contractor SIRETs, one of them
   closed: the acte goes to the TdT unhindered, and the closed establishment comes back
   as a separate warning notification;
3. a second member whose setting is ``--contractor-check refuse`` submits a contract naming
   the same closed establishment (now in the hub-wide cache): the acte is rejected before
   the TdT, with the reason ``contractor_closed`` on ``contractor_sirets[1]``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import date
from typing import Any

import httpx

from agents.acts.contractors import contractor_request_id
from agents.registry.answers import CONTRACTOR_CLOSED
from ops.demo_kit import member_session, register_for_demo, say, upload_pdf
from ops.demo_signature import MEMBER_VIEW_SECONDS
from ops.members import (
    Registration,
    new_member,
    registry_identity,
)
from ops.stack import Stack, registries_url, sandbox_tls_material
from ops.submissions import ActeDraft, submission_headers
from relais.flows.ids import flow_id_for
from relais.settings import Settings
from topics.member import submissions


async def _numbers(stack: Stack) -> dict[str, list[str]]:
    """Sample numbers of the sandbox registries (``/sandbox/numbers``)."""
    url = registries_url(stack.settings, stack.registries_port, tls=stack.tls)
    verify: Any = str(sandbox_tls_material(stack.settings).ca_file) if stack.tls else True
    async with httpx.AsyncClient(verify=verify, timeout=10) as client:
        response = await client.get(f"{url}/sandbox/numbers")
        response.raise_for_status()
        numbers: dict[str, list[str]] = response.json()
    return numbers


async def _register_from_sirene(settings: Settings, siren: str) -> Registration | None:
    identity = await registry_identity(settings.bootstrap_servers, siren, timeout=60)
    if identity is None or identity.department is None:
        print(f"  Sirene gave no usable answer for {siren}")
        return None
    registration = new_member(siren, identity.name, identity.department,
                              legal_category=identity.legal_category, commune=identity.commune,
                              commune_code=identity.commune_code)
    await register_for_demo(settings, [registration])
    print(f"  relais members add {siren}  (no --name, no --department)")
    print(f"  Sirene: {identity.name}, legal category {identity.legal_category}, commune "
          f"{identity.commune} ({identity.commune_code})")
    print(f"  registered {siren} as {registration.member.name!r}, department "
          f"{registration.member.department}; legal category and commune stored on its "
          "record")
    return registration


async def _contract_with_contractors(
    settings: Settings, member: Registration, closed: str, opened: str, *, refused: bool = False
) -> bool:
    """A contract naming ``opened`` and ``closed``: posted with a separate warning, or
    (``refused``: the member refuses closed contractors) rejected with the reason."""
    siren = member.member.siren
    run = format(int(time.time()) % 36**5, "X")
    submission_id = f"demo-contract-{run}{'-r' if refused else ''}"
    async with member_session(settings, member) as (watcher, publisher):
        blob = await upload_pdf(settings, member, "Marche de voirie 2026",
                                "marche-voirie-2026.pdf")
        draft = ActeDraft(submission_id=submission_id, member_siren=siren, nature_code=4,
                          matieres=(1, 1), numero_interne=f"M{run}", decision_date=date.today(),
                          objet="Marche de travaux de voirie", document=blob)
        record = {**draft.to_record(), "contractor_sirets": [opened, closed]}
        await publisher.publish(submissions(siren).name, key=submission_id,
                                schema_name="ActeSubmission", record=record,
                                headers=submission_headers(publisher, siren, submission_id))
        print(f"  contract {submission_id} names contractors {opened} (open) and {closed}")
        acte = flow_id_for(siren, submission_id)
        warned = flow_id_for(siren, contractor_request_id(submission_id, closed))

        def done(got: list[dict[str, Any]]) -> bool:
            if refused:
                return any(n["flow_id"] == acte and n["state"] == "rejected"
                           and any(r["code"] == CONTRACTOR_CLOSED
                                   and r["field"] == "contractor_sirets[1]"
                                   for r in n["reasons"]) for n in got)
            return (any(n["flow_id"] == acte and n["state"] == "posted" for n in got)
                    and any(n["flow_id"] == warned and n["details"].get("warning")
                            == CONTRACTOR_CLOSED for n in got))

        received = await watcher.wait_until(done, 120)
    for note in received:
        if note["flow_id"] == acte or note["submission_id"].startswith(submission_id):
            warning = note["details"].get("warning")
            print(f"  [{note['kind']:<14}] {note['flow_type']:<8} {note['state']:<9} "
                  f"{note['message']}" + (f"  <-- {warning}" if warning else ""))
            for reason in note["reasons"]:
                print(f"{'':20}{reason['field']}: {reason['code']}: {reason['message']}")
    return done(received)


async def _refusing(settings: Settings, member: Registration) -> Registration:
    """``member`` registered again with ``contractor_check=refuse`` (same token, same
    Kafka password), once the hub's member directory has had time to see it."""
    refusing = replace(member, member=replace(member.member, contractor_check="refuse"))
    await register_for_demo(settings, [refusing])
    print(f"  relais members add {member.member.siren} --contractor-check refuse --force")
    await asyncio.sleep(MEMBER_VIEW_SECONDS)
    return refusing


async def registry_demo(
    settings: Settings, stack: Stack, member: Registration,
    refusing: Registration | None = None,
) -> bool:
    """The registry steps (the refusal with ``refusing``, a second member, when given);
    True when each expected outcome was observed."""
    numbers = await _numbers(stack)
    taken = {member.member.siren, "212102313", "217100072"}
    commune = next(s for s in numbers["communes"] if s not in taken)
    say("a commune registered with only its SIREN: the sandbox Sirene fills the rest")
    registered = await _register_from_sirene(settings, commune)
    say("a contract names its contractors: a closed establishment is flagged, "
         "the acte goes on")
    closed = numbers["closed_establishments"][0]
    opened = numbers["open_establishments"][0]
    flagged = await _contract_with_contractors(settings, member, closed, opened)
    refused = True
    if refusing is not None:
        say(f"{refusing.member.name} refuses contracts with a closed contractor: the same "
             "closed establishment, now in the hub's cache, stops its contract before the TdT")
        second = await _refusing(settings, refusing)
        refused = await _contract_with_contractors(settings, second, closed, opened,
                                                   refused=True)
    return registered is not None and flagged and refused
