"""The demo's archive part (issue 9), called once by ``ops/demo.py``:

the demo members' ``archive`` account (``ops.stack.with_archive``) says
``auto_archive=true``, so the hub archives each acte the prefecture acknowledged: once its
stamped copy arrives, the hub fetches the ARActe and the stamped PDF from the TdT, packs
them with the acte into a SEDA 2.2 SIP and sends it to the sandbox archive (Vitam's
ingest API), then follows the operation until its ATR says archived. This step finds the
demo's acknowledged acte, waits (bounded) for its archive flow to reach *archived* and
prints the flow, the archive's operation id, the archive units' system ids from the ATR
and what the sandbox archive holds for it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agents.archive.machines import ARCHIVE_REJECTED, BY_TYPE
from ops.flows import FlowFilter, flow_history, latest_states
from ops.members import Registration
from ops.stack import Stack, archive_url, sandbox_control_client
from relais.flows.ids import flow_id_for
from relais.settings import Settings

DEMO_ACTE_PREFIX = "demo-ok-"
"""Submission ids of the demo's acknowledged acte (``ops/demo.py``, one per run)."""
ARCHIVE_PREFIX = "acte-"
"""An acte's archive flow has the submission id ``acte-<acte submission id>``
(agents/archive/acts.py)."""
WAIT_SECONDS = 120.0
POLL_SECONDS = 2.0
ENDS = frozenset({"archived", ARCHIVE_REJECTED, "rejected", "failed", "uncertain"})
"""Archive states after which waiting longer shows nothing new."""


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def archive_flow_of(siren: str, acte_submission_id: str) -> str:
    """The flow id of the archive transfer of a member's acte."""
    return flow_id_for(siren, f"{ARCHIVE_PREFIX}{acte_submission_id}")


async def _acknowledged_acte(settings: Settings, siren: str) -> dict[str, Any] | None:
    """The latest state of the member's most recent acknowledged demo acte."""
    found = await latest_states(settings.bootstrap_servers,
                                FlowFilter(member=siren, flow_type="acte",
                                           state="acknowledged"))
    mine = [s for s in found if s["submission_id"].startswith(DEMO_ACTE_PREFIX)]
    return mine[0] if mine else None  # most recent first


async def wait_for_archive(settings: Settings, flow_id: str,
                           timeout: float = WAIT_SECONDS) -> list[dict[str, Any]]:
    """The archive flow's history once it reached an end (see :data:`ENDS`), or as it
    stands when ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while True:
        events = await flow_history(settings.bootstrap_servers, flow_id, machines=BY_TYPE)
        if (events and events[-1]["state"] in ENDS) or time.monotonic() >= deadline:
            return events
        await asyncio.sleep(POLL_SECONDS)


def archive_lines(events: list[dict[str, Any]]) -> list[str]:
    """The history of an archive flow, then what its *archived* event says: the archive's
    operation id, the ATR's ReplyCode and the system id of each archive unit."""
    lines = [f"  {e['occurred_at']:%H:%M:%S}  {e['state']:<17} by {e['stage']}"
             f"{'  ' + e['partner_ref'] if e['partner_ref'] else ''}" for e in events]
    last = events[-1] if events else None
    if last is None or last["state"] != "archived":
        return lines
    details = last["details"]
    lines.append(f"  archive operation {details.get('operation_id', last['partner_ref'])}, "
                 f"ATR ReplyCode {details.get('reply_code', '?')}")
    units = [(key.removeprefix("unit."), system_id) for key, system_id in details.items()
             if key.startswith("unit.")]  # in the ATR's order
    if units:
        lines.append(f"  {len(units)} archive units (the SIP's id -> the archive's system id):")
    lines += [f"    {sip_id:<12} -> {system_id}" for sip_id, system_id in units]
    return lines


async def _operations(settings: Settings, stack: Stack, flow_id: str) -> list[dict[str, Any]]:
    """The sandbox archive's operations for the transfer ``flow_id`` (its
    ``MessageIdentifier``)."""
    async with sandbox_control_client(settings, tls=stack.tls, timeout=10) as client:
        response = await client.get(f"{archive_url(settings, tls=stack.tls)}/sandbox/operations")
        response.raise_for_status()
        operations: list[dict[str, Any]] = response.json()
    return [op for op in operations if op.get("message_identifier") == flow_id]


async def archive_demo(settings: Settings, stack: Stack, member: Registration) -> bool:
    """Wait for the archive of ``member``'s acknowledged demo acte; True once archived."""
    siren = member.member.siren
    account = member.member.account("archive")
    _say(f"{member.member.name} archives every acknowledged acte (SEDA 2.2, Vitam)")
    if account is None or account.option("auto_archive") != "true":
        print("  FAILED: the member has no archive account with auto_archive=true")
        return False
    print(f"  archive {account.url}: tenant {account.option('tenant')}, archival agency "
          f"{account.option('archival_agency')}, auto_archive=true")
    acte = await _acknowledged_acte(settings, siren)
    if acte is None:
        print("  FAILED: no acknowledged demo acte to archive")
        return False
    flow_id = archive_flow_of(siren, acte["submission_id"])
    print(f"  acte {acte['submission_id']} ({acte['flow_id']}) acknowledged; "
          f"its archive flow: {flow_id}")
    started = time.monotonic()
    events = await wait_for_archive(settings, flow_id)
    state = events[-1]["state"] if events else "not started"
    _say(f"relais flows show {flow_id}")
    for line in archive_lines(events):
        print(line, flush=True)
    if state != "archived":
        last = events[-1] if events else None
        why = f" ({last['error_code']}: {last['error_message']})" \
            if last and last["error_code"] else ""
        print(f"  FAILED: the archive flow is {state}{why} after "
              f"{time.monotonic() - started:.0f} s (bounded at {WAIT_SECONDS:.0f} s)")
        return False
    operations = await _operations(settings, stack, flow_id)
    print(f"  the sandbox archive holds {len(operations)} operation(s) for this transfer: "
          + ", ".join(f"{op['operation_id']} {op['state']}/{op['status']}"
                      for op in operations))
    return len(operations) == 1
