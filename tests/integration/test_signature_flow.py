"""Actes signed in i-Parapheur before the TdT, end to end on the real broker: 300 actes
from 10 members through the sandbox i-Parapheur (70% signed, 15% rejected, 15% slow) then
the sandbox TdT. Every acte ends in exactly one terminal state, rejected ones carry the
annotation and the signer's name, no dossier is created twice and no acte posted twice;
a worker killed between GetDossier and the journal loses no signature."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.demo_documents import minimal_pdf
from ops.flows import FlowFilter
from ops.members import Registration
from ops.stack import (
    Stack,
    iparapheur_url,
    sandbox_config,
    sandbox_member,
    sandbox_url,
    with_iparapheur,
)
from ops.submissions import ActeDraft, publish_acte
from relais.blobs.filesystem import FilesystemBlobStore
from relais.flows.ids import flow_id_for
from relais.settings import Settings
from tests.integration import stacks

pytestmark = pytest.mark.integration

MEMBERS = 10
ACTES_PER_MEMBER = 30
TERMINAL = {"acknowledged", "rejected"}
WSDL = (Path(__file__).parents[2] / ".." / "shared" / "reference" / "iparapheur"
        / "iparapheur.xml.wsdl").resolve()
ANNOTATION = "Pièce manquante"
KILLED_ACTES = 20
HANG_SECONDS = 4  # every i-Parapheur answer held back this long after the work is done
OPTIONS = {"acte.type": "ACTES", "acte.sub_type": "Deliberation", "wsdl": str(WSDL)}


@pytest.fixture(scope="module")
def signing_stack(
    hub_kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[Registration]]]:
    settings = stacks.stack_settings(hub_kafka_bootstrap, tmp_path_factory.mktemp("signature"),
                                     "sign", sandbox_block=4)
    registrations = [
        with_iparapheur(sandbox_member(settings, siren, f"Commune {i}", "021", tls=False),
                        settings, OPTIONS)
        for i, siren in enumerate(stacks.sirens(MEMBERS))
    ]
    env = {"RELAIS_PREFECTURE_POLL_SECONDS": "2", "RELAIS_POLL_TIERS": "5s,5s,5s,30s",
           "RELAIS_IPARAPHEUR_PASSWORD": "ws-relais"}
    signers = {"behaviour": {"reject_viewer_rate": 0.05, "reject_signer_rate": 0.10,
                             "never_rate": 0.0, "slow_rate": 0.15, "visa_seconds": 0.5,
                             "sign_seconds": 0.5, "slow_seconds": 6,
                             "rejection_annotation": ANNOTATION}}
    with stacks.running_stack(settings, registrations, sandbox_config(registrations), tls=False,
                              extra_env=env, iparapheur=signers) as stack:
        yield stack, registrations


async def test_three_hundred_actes_signed_or_rejected_then_transmitted(
    signing_stack: tuple[Stack, list[Registration]],
) -> None:
    stack, registrations = signing_stack
    settings = stack.settings
    blob = await stacks.shared_acte_blob(settings, registrations)
    started = time.monotonic()
    expected = await stacks.publish_actes(settings, [
        ActeDraft(submission_id=f"{siren}-s{i}", member_siren=siren, nature_code=1,
                  matieres=(1 + i % 9, 1), numero_interne=f"S{i:04d}",
                  decision_date=date(2026, 11, 2), objet=f"Acte signé numéro {i}",
                  document=blob)
        for siren in (r.member.siren for r in registrations) for i in range(ACTES_PER_MEMBER)])

    states = await stacks.wait_for_states(
        settings, FlowFilter(flow_type="acte"), stacks.settled_in(expected, TERMINAL),
        timeout=200, every=3, flows=expected)
    elapsed = time.monotonic() - started
    outcome = Counter(states.values())
    print(f"\n300 signed actes: all terminal after {elapsed:.1f} s: {dict(outcome)}")
    assert len(states) == len(expected), f"{len(expected) - len(states)} flows have no state"
    assert set(outcome) <= TERMINAL, outcome

    async with httpx.AsyncClient() as client:
        parapheur = (await client.get(f"{iparapheur_url(settings, tls=False)}/sandbox/stats")
                     ).json()
        tdt = (await client.get(f"{sandbox_url(settings, tls=False)}/sandbox/stats")).json()
    print({k: v for k, v in parapheur.items() if k not in ("members", "faults")},
          {k: tdt.get(k) for k in ("transactions_created", "signed_posts", "duplicate_posts")})
    assert parapheur["dossiers_created"] == len(expected)
    assert parapheur.get("duplicates_refused", 0) == 0
    rejected_in_parapheur = (parapheur.get("rejected_by_viewer", 0)
                             + parapheur.get("rejected_by_signer", 0))
    assert rejected_in_parapheur == outcome["rejected"] > 0
    assert tdt["transactions_created"] == outcome["acknowledged"] == parapheur["signed"]
    assert tdt["signed_posts"] == tdt["transactions_created"]
    assert tdt.get("duplicate_posts", 0) == 0

    for registration in registrations:
        siren = registration.member.siren
        notes = await stacks.notifications(settings.bootstrap_servers, siren)
        finals = Counter(n["flow_id"] for n in notes if n["state"] in TERMINAL
                         and n["kind"] in ("STATE_CHANGED", "REJECTED"))
        assert set(finals) == {f for f, owner in expected.items() if owner == siren}
        assert max(finals.values()) == 1
        for note in notes:
            if note["kind"] == "REJECTED":
                assert note["details"]["annotation"] == ANNOTATION
                assert note["details"]["signer"]


async def _parapheur_stats(settings: Settings) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        stats: dict[str, Any] = (await client.get(
            f"{iparapheur_url(settings, tls=False)}/sandbox/stats")).json()
    return stats


async def test_a_worker_killed_between_get_dossier_and_the_journal_loses_nothing(
    signing_stack: tuple[Stack, list[Registration]],
) -> None:
    """Every i-Parapheur answer is held back 4 s after the work is done; the worker is
    SIGKILLed as soon as the sandbox has served a GetDossier: i-Parapheur gave the
    signature, the worker never journalled it. A new worker fetches it again (more
    GetDossier calls than signatures) and every signature still reaches the TdT, once;
    no dossier is created twice."""
    stack, registrations = signing_stack
    settings = stack.settings
    parapheur = f"{iparapheur_url(settings, tls=False)}/sandbox"
    async with httpx.AsyncClient() as client:
        await client.post(f"{parapheur}/behaviour", json={
            "reject_viewer_rate": 0.0, "reject_signer_rate": 0.0, "slow_rate": 0.0})
        before = (await client.get(f"{parapheur}/stats")).json()
        tdt_before = (await client.get(f"{sandbox_url(settings, tls=False)}/sandbox/stats")
                      ).json()
        await client.post(f"{parapheur}/faults",
                          json={"timeout_rate": 1.0, "hang_seconds": HANG_SECONDS})
    store = FilesystemBlobStore(settings.blob_dir)
    siren = registrations[0].member.siren
    blob = await store.put_bytes(minimal_pdf("tuee"), media_type="application/pdf",
                                 filename="acte.pdf", owner=siren)
    expected: set[str] = set()
    async with stacks.publishing(settings) as publisher:
        for i in range(KILLED_ACTES):
            draft = ActeDraft(submission_id=f"{siren}-k{i}", member_siren=siren, nature_code=1,
                              matieres=(1, 1), numero_interne=f"K{i:04d}",
                              decision_date=date(2026, 11, 2), objet=f"Acte {i}", document=blob)
            await publish_acte(publisher, draft)
            expected.add(flow_id_for(siren, draft.submission_id))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = await _parapheur_stats(settings)
        if stats.get("calls_GetDossier", 0) > before.get("calls_GetDossier", 0):
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("no GetDossier was called")
    stack.processes["worker"].kill()
    async with httpx.AsyncClient() as client:
        await client.post(f"{parapheur}/faults", json={"timeout_rate": 0.0})
    await asyncio.to_thread(stack.start_worker)

    states = await stacks.wait_for_states(
        settings, FlowFilter(flow_type="acte"), stacks.settled_in(expected, {"acknowledged"}),
        timeout=150, every=3, flows=expected)
    assert states == dict.fromkeys(expected, "acknowledged"), Counter(states.values())
    after = await _parapheur_stats(settings)
    async with httpx.AsyncClient() as client:
        tdt = (await client.get(f"{sandbox_url(settings, tls=False)}/sandbox/stats")).json()

    def delta(name: str, now: dict[str, Any], then: dict[str, Any]) -> int:
        return int(now.get(name, 0)) - int(then.get(name, 0))

    print(f"\nkilled after a served GetDossier: GetDossier "
          f"{delta('calls_GetDossier', after, before)}, "
          f"ArchiverDossier {delta('calls_ArchiverDossier', after, before)}, GetHistoDossier "
          f"{delta('calls_GetHistoDossier', after, before)} calls for {len(expected)} signatures")
    assert delta("calls_GetDossier", after, before) > len(expected)  # fetched again
    assert delta("dossiers_created", after, before) == len(expected)
    assert delta("duplicates_refused", after, before) == 0
    assert delta("transactions_created", tdt, tdt_before) == len(expected)
    assert delta("signed_posts", tdt, tdt_before) == len(expected)
    assert delta("duplicate_posts", tdt, tdt_before) == 0
