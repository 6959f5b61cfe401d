"""What the sandbox i-Parapheur holds: dossiers, their histories, and the signers' schedule.

A created dossier gets the history i-Parapheur writes at creation (i-Parapheur 5's SOAP
tests, ``GetHistoDossier`` feature: "Création de dossier", the public annotation of the
start, the desk it lands on), then its fate schedules the viewer's and the signer's steps
on the simulator's clock: ``Vise`` / ``RejetVisa``, then ``Lu``, ``Signe`` / ``RejetSignataire``
and ``Archive`` ("Circuit terminé, dossier archivable"). The actors' names are the ``nom``
of their entries, as in real histories.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.common.clock import Clock
from sandbox.common.simulator import Simulator
from sandbox.iparapheur import signing
from sandbox.iparapheur.config import IparapheurConfig, IparapheurFaults, SignerBehaviour

SERVICE_WEB = "Service Web"


@dataclass(frozen=True)
class Document:
    content: bytes
    content_type: str
    name: str | None = None


@dataclass
class LogLine:
    timestamp: datetime
    nom: str
    status: str
    annotation: str


@dataclass
class Dossier:
    """One dossier as i-Parapheur holds it."""

    dossier_id: str
    technical_type: str
    sub_type: str
    visibility: str
    document: Document
    annexes: list[tuple[str, Document]]
    deadline: str | None
    public_annotation: str | None
    private_annotation: str | None
    xpath: str | None
    acte: dict[str, str] | None
    metadata: dict[str, str]
    fate: str
    login: str | None
    history: list[LogLine] = field(default_factory=list)
    archived: bool = False
    signature: bytes | None = None  # made once, at signing: every GetDossier returns it

    @property
    def status(self) -> str:
        return self.history[-1].status

    @property
    def is_xml(self) -> bool:
        return self.document.content_type in ("application/xml", "text/xml")


class IparapheurState(Simulator[IparapheurFaults]):
    """Dossiers by id, the signers' behaviour, per-id fates, counters."""

    def __init__(self, config: IparapheurConfig, clock: Clock) -> None:
        self.config = config
        self.behaviour = config.behaviour
        super().__init__(clock, random.Random(config.seed), config.faults)  # noqa: S311

    def reset(self, *, keep_faults: bool = False) -> None:
        super().reset(keep_faults=keep_faults)
        self.dossiers: dict[str, Dossier] = {}
        self.fates: dict[str, str] = {}
        self.behaviour = self.config.behaviour

    def stats(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for dossier in self.dossiers.values():
            by_status[dossier.status] = by_status.get(dossier.status, 0) + 1
        return {**super().stats(), "dossiers": len(self.dossiers), "by_status": by_status}

    # -- business -----------------------------------------------------------------------

    def create(self, dossier: Dossier) -> bool:
        """Record ``dossier`` and schedule its circuit; False when the id is already held."""
        # two outcome draws per create attempt, whatever the rates (a seed replays a run)
        fate_draw = self.outcome_rng.random()
        slow_draw = self.outcome_rng.random()
        if dossier.dossier_id in self.dossiers:
            self.count("duplicates_refused", dossier.login)
            return False
        dossier.fate = self.fates.get(dossier.dossier_id) or self._fate(fate_draw)
        slow = dossier.fate == "slow" or slow_draw < self.behaviour.slow_rate
        now = self.now()
        behaviour = self.behaviour
        dossier.history = [
            LogLine(now, SERVICE_WEB, "NonLu", "Création de dossier"),
            LogLine(now, SERVICE_WEB, "NonLu",
                    f"Annotation publique {dossier.login or 'ws'} (démarrage du dossier "
                    f"{dossier.dossier_id})"),
            LogLine(now, SERVICE_WEB, "EnCoursVisa",
                    f"Dossier déposé sur le bureau {behaviour.viewer_desk} pour Visa"),
        ]
        self.dossiers[dossier.dossier_id] = dossier
        self.count("dossiers_created", dossier.login)
        visa_at = now + timedelta(
            seconds=behaviour.slow_seconds if slow else behaviour.visa_seconds
        )
        sign_at = visa_at + timedelta(
            seconds=behaviour.slow_seconds if slow else behaviour.sign_seconds
        )
        self.schedule(visa_at, lambda: self._visa(dossier, sign_at))
        return True

    def _fate(self, value: float) -> str:
        behaviour = self.behaviour
        edges = (
            (behaviour.reject_viewer_rate, "reject_viewer"),
            (behaviour.reject_signer_rate, "reject_signer"),
            (behaviour.never_rate, "never"),
        )
        total = 0.0
        for rate, fate in edges:
            total += rate
            if value < total:
                return fate
        return "sign"

    def _append(self, dossier: Dossier, at: datetime, nom: str, status: str, text: str) -> None:
        if self.dossiers.get(dossier.dossier_id) is dossier and not dossier.archived:
            dossier.history.append(LogLine(at, nom, status, text))

    def _visa(self, dossier: Dossier, sign_at: datetime) -> None:
        behaviour = self.behaviour
        at = self.now()
        if dossier.fate == "reject_viewer":
            self._append(dossier, at, behaviour.viewer_name, "RejetVisa",
                         behaviour.rejection_annotation)
            self.count("rejected_by_viewer", dossier.login)
            return
        self._append(dossier, at, behaviour.viewer_name, "Vise",
                     f"Annotation publique (visa du dossier {dossier.dossier_id})")
        self._append(dossier, at, SERVICE_WEB, "NonLu",
                     f"Dossier déposé sur le bureau {behaviour.signer_desk} pour signature")
        if dossier.fate != "never":
            self.schedule(sign_at, lambda: self._sign(dossier))

    def _sign(self, dossier: Dossier) -> None:
        behaviour = self.behaviour
        at = self.now()
        self._append(dossier, at, behaviour.signer_name, "Lu",
                     "Dossier lu et prêt pour la signature")
        if dossier.fate == "reject_signer":
            self._append(dossier, at, behaviour.signer_name, "RejetSignataire",
                         behaviour.rejection_annotation)
            self.count("rejected_by_signer", dossier.login)
            return
        dossier.signature = (
            signing.signed_xml(dossier.document.content) if dossier.is_xml
            else signing.detached_cms(dossier.document.content)
        )
        self._append(dossier, at, behaviour.signer_name, "Signe",
                     f"Annotation publique (signature du dossier {dossier.dossier_id})")
        self._append(dossier, at, behaviour.signer_name, "Archive",
                     "Circuit terminé, dossier archivable")
        self.count("signed", dossier.login)

    def set_behaviour(self, behaviour: SignerBehaviour) -> None:
        self.behaviour = behaviour
