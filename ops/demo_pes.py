"""PES files (Hélios) for the demo and the tests: a small PES_Aller built here, its
submission, and the demo's PES part (one file accepted, one partly rejected).

:func:`pes_aller` writes a PES_Aller from the facts of the PES V2 format (namespace
``…/pes_v2/Rev0/aller``, values in ``V`` attributes, ``Enveloppe`` → ``EnTetePES`` →
``PES_DepenseAller`` with one ``Bordereau`` per number, each holding one ``Piece`` with
one ``LigneDePiece``): an ``IdColl`` that is a SIRET of the member's SIREN, S²LOW's field
lengths, amounts that add up. The values (tiers, objects, amounts) are made up here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from lxml import etree

from ops.members import Registration, member_security
from ops.notifications import NotificationWatcher
from ops.stack import Stack, sandbox_control_client, sandbox_url
from relais.blobs.model import BlobRef
from relais.flows.ids import flow_id_for
from relais.identifiers import make_siret
from relais.kafka.publisher import Publisher, dataschema_uri
from relais.pes.codes import ALLER_NS
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec
from relais.wire.headers import EventHeaders
from topics import member as member_topics

PES_TERMINAL = frozenset({"acknowledged", "partially-accepted", "rejected", "uncertain",
                          "failed"})
"""The states a PES file ends in (``uncertain``/``failed``: an operator's turn)."""


@dataclass(frozen=True)
class PesHeader:
    """The ``EnTetePES`` of a file: the collectivité, its budget and its comptable."""

    siren: str
    nic: str = "0001"
    cod_col: str = "101"
    cod_bud: str = "01"
    id_post: str = "021001"

    @property
    def id_coll(self) -> str:
        return make_siret(self.siren, self.nic)


def _v(parent: etree._Element, name: str, value: str) -> etree._Element:
    return etree.SubElement(parent, name, V=value)


def pes_aller(
    header: PesHeader, nom_fic: str, *, bordereaux: int = 2, first_number: int = 1,
    exercice: int = 2026, day: date | None = None,
) -> bytes:
    """A PES_Aller (ISO-8859-1) holding ``bordereaux`` dépense bordereaux numbered from
    ``first_number``, each with one pièce of one line."""
    today = (day or date(exercice, 3, 2)).isoformat()
    root = etree.Element(f"{{{ALLER_NS}}}PES_Aller", nsmap={"n": ALLER_NS}, Id=nom_fic[:40])
    parametres = etree.SubElement(etree.SubElement(root, "Enveloppe"), "Parametres")
    _v(parametres, "Version", "2")
    _v(parametres, "TypFic", "PESALR2")
    _v(parametres, "NomFic", nom_fic)
    emetteur = etree.SubElement(root[0], "Emetteur")
    _v(emetteur, "Sigle", "Relais demo")
    entete = etree.SubElement(root, "EnTetePES")
    for name, value in (("DteStr", today), ("IdPost", header.id_post),
                        ("IdColl", header.id_coll), ("CodCol", header.cod_col),
                        ("CodBud", header.cod_bud)):
        _v(entete, name, value)
    depense = etree.SubElement(root, "PES_DepenseAller")
    _v(etree.SubElement(depense, "EnTeteDepense"), "IdVer", "2")
    for offset in range(bordereaux):
        number = first_number + offset
        amount = f"{100 + number % 900}.{number % 100:02d}"
        bordereau = etree.SubElement(depense, "Bordereau", Id=f"B{nom_fic[:30]}-{number}")
        bloc = etree.SubElement(bordereau, "BlocBordereau")
        for name, value in (("Exer", str(exercice)), ("IdBord", str(number)),
                            ("DteBordEm", today), ("TypBord", "01"), ("NbrPce", "1"),
                            ("MtBordHT", amount)):
            _v(bloc, name, value)
        piece = etree.SubElement(bordereau, "Piece")
        info = etree.SubElement(etree.SubElement(piece, "BlocPiece"), "InfoPce")
        for name, value in (("IdPce", str(number)), ("TypPce", "01"), ("NatPce", "01"),
                            ("Obj", f"Fournitures de bureau, facture {number}")):
            _v(info, name, value)
        line = etree.SubElement(piece, "LigneDePiece")
        line_info = etree.SubElement(etree.SubElement(line, "BlocLignePiece"), "InfoLignePce")
        for name, value in (("IdLigne", "1"), ("Nature", "6064"), ("Fonction", "020"),
                            ("MtHT", amount)):
            _v(line_info, name, value)
        tiers = etree.SubElement(etree.SubElement(line, "Tiers"), "InfoTiers")
        for name, value in (("NatIdTiers", "01"), ("RefTiers", f"T{number % 1000:03d}"),
                            ("CatTiers", "50"), ("NatJur", "03"), ("Nom", "PAPETERIE DU CENTRE")):
            _v(tiers, name, value)
    raw = etree.tostring(root.getroottree(), xml_declaration=True, encoding="ISO-8859-1")
    assert isinstance(raw, bytes)
    return raw


async def publish_pes(publisher: Publisher, siren: str, submission_id: str,
                      blob: BlobRef) -> str:
    """Publish a PES submission on the member's submissions topic; its flow id."""
    await publisher.publish(
        member_topics.submissions(siren).name, key=submission_id,
        schema_name="PesSubmission",
        record={"submission_id": submission_id, "member_siren": siren,
                "pes_aller": blob.to_dict()},
        headers=EventHeaders.new(
            source=f"/members/{siren}/back-office", type="fr.relais.pes.PesSubmission",
            subject=submission_id, flow_id=None,
            dataschema=dataschema_uri(publisher.codec, "PesSubmission")),
    )
    return flow_id_for(siren, submission_id)


def _show(note: dict[str, Any]) -> None:
    print(f"  [{note['kind']:<15}] {note['submission_id'] or '-':<16} {note['state']:<19}"
          f" {note['message']}", flush=True)
    for reason in note["reasons"]:
        print(f"{'':24}element {reason['field']}: {reason['code']} — {reason['message']}",
              flush=True)


def _reached(flow_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether ``flow_id`` was imported into the TdT (or ended before)."""
    return lambda got: any(x["flow_id"] == flow_id and x["state"] in ("posted", *PES_TERMINAL)
                           for x in got)


async def pes_demo(settings: Settings, stack: Stack, member: Registration) -> bool:
    """Two PES files through the sandbox Hélios: one accepted, one whose last bordereau
    the comptable rejects (the element and the DGFiP label shown). True when both came."""
    del stack  # the sandbox is reached through the settings; kept for a uniform call
    siren = member.member.siren
    codec = AvroCodec()
    api = f"http://{settings.api_host}:{settings.api_port}"
    back_office = member_security(member, settings.bootstrap_servers)
    watcher = NotificationWatcher(settings.bootstrap_servers, siren, codec, security=back_office)
    publisher = Publisher(settings.bootstrap_servers, codec, client_id="relais-demo",
                          security=back_office)
    run = format(int(time.time()) % 36**5, "X")
    header = PesHeader(siren)
    flows: dict[str, str] = {}
    print(f"\n== PES (Hélios): {member.member.name} sends two PES_Aller files to its "
          "comptable through the TdT", flush=True)
    await watcher.start()
    await publisher.start()
    try:
        async with sandbox_control_client(settings, timeout=30) as client:
            for n, (label, partial) in enumerate((("accepted", 0.0), ("partly", 1.0))):
                raw = pes_aller(header, f"DEMO{run}{label.upper()}", bordereaux=2,
                                first_number=int(time.time()) % 100000 * 10 + 2 * n)
                answer = await client.post(
                    f"{api}/v1/blobs", content=raw,
                    headers={"Authorization": f"Bearer {member.token}",
                             "Content-Type": "application/xml",
                             "X-Relais-Filename": f"PES-{label}-{run}.xml"})
                answer.raise_for_status()
                up = answer.json()
                blob = BlobRef(up["sha256"], up["size"], up["media_type"], up["filename"])
                knobs = await client.post(f"{sandbox_url(settings)}/sandbox/helios/knobs",
                                          json={"partial_rate": partial, "ko_rate": 0.0})
                knobs.raise_for_status()
                print(f"  PES_Aller {label}: {len(raw)} bytes, 2 bordereaux; sandbox "
                      f"comptable partial_rate={partial}", flush=True)
                flows[label] = await publish_pes(publisher, siren, f"pes-{label}-{run}", blob)
                await watcher.wait_until(_reached(flows[label]), 60)
            await client.post(f"{sandbox_url(settings)}/sandbox/helios/knobs",
                              json={"partial_rate": 0.0})

        def finals(got: list[dict[str, Any]]) -> dict[str, str]:
            return {label: x["state"] for label, f in flows.items() for x in got
                    if x["flow_id"] == f and x["state"] in PES_TERMINAL}

        await watcher.wait_until(lambda got: len(finals(got)) == len(flows), 90)
    finally:
        await publisher.stop()
        await watcher.stop()
    mine = set(flows.values())
    for note in watcher.received:
        if note["flow_id"] in mine:
            _show(note)
    outcome = finals(watcher.received)
    rejected = [r for n in watcher.received if n["flow_id"] == flows["partly"]
                for r in n["reasons"]]
    print(f"  outcome: {outcome}", flush=True)
    return (outcome == {"accepted": "acknowledged", "partly": "partially-accepted"}
            and any(r["field"].startswith("ElementACQUIT") and r["message"][:4].isdigit()
                    for r in rejected))
