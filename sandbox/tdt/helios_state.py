"""The sandbox's Hélios desk: S²LOW's ``helios_transactions`` and ``helios_retour`` and the
comptable (DGFiP Hélios) answering each PES_Aller with a PES_ACQUIT.

It runs on the sandbox TdT's :class:`~sandbox.tdt.state.TdtState` (one clock, one schedule,
the same seeded streams, accounts and transport fault knobs). A PES_Aller's life, as S²LOW
records it (``src/Enum/HeliosStatus.php``; times from the TdT's ``Schedule``):

- import: 1 "Fichier bien reçu par la plate-forme S2low" (13 with ``must_signed``);
  refused at once, as ``HeliosController::import`` does, when the same bytes (SHA-1) were
  already posted, the file is empty or larger than ``max_total_bytes``;
- ``accept_after``: S²LOW's own checks; -1 with a message when the file is not a readable
  PES_Aller, has no ``NomFic``, reuses a ``NomFic`` + ``CodCol`` already posted, breaks the
  ``EnTetePES`` lengths (IdColl 14, CodCol 3, IdPost 6, CodBud 2) or carries a signature
  whose XML-DSig structure or digest is broken (S²LOW verifies XAdES signatures; with
  ``signature_check="helios"`` the file goes on and Hélios rejects it instead); else 2;
- ``transmit_after``: 3 (transmis);
- ``acknowledge_after``: the comptable writes the PES_ACQUIT and the transaction goes to
  8 (information disponible), whatever its elements say, as S²LOW does;
- later (``prefecture_message_after``), for a drawn share of the files, a PES_Retour
  for the account.

The comptable's checks (each rejection names its element with a ``NumAnoAck``):
``IdColl`` not a valid SIRET of the account's SIREN → every element ``ERREUR_SIRET``;
``CodCol``/``CodBud`` in the unknown lists → ``ERREUR_CODE_COLLECTIVITE_BUDGET``; a bad
signature (``signature_check="helios"``) → ``ERREUR_SIGNATURE_INVALIDE``; a bordereau
(IdColl, CodCol, CodBud, domain, exercice, number) already integrated →
``ERREUR_DOUBLON_BORDEREAU``; a PJ ``IdUnique`` already integrated → ``ERREUR_DOUBLON_PJ``
with the real DGFiP label "1984 - …". Then the drawn outcomes: ``ko_rate`` rejects every
element (line errors "1971 - Compte fonction présent à tort", a real DGFiP label),
``partial_rate`` the last one when there are at least two.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from relais.errors import Reason, ValidationError
from relais.identifiers import is_valid_siret
from relais.pes.aller import PesAller, read_aller
from sandbox.tdt.config import SandboxAccount
from sandbox.tdt.helios_acquit import (
    AckElement,
    AckError,
    LineError,
    build_acquit,
    build_pes_retour,
    elements_for,
)
from sandbox.tdt.state import TdtState, local_day

log = structlog.get_logger(__name__)

ERROR, POSTED, WAITING, TRANSMITTED, INFORMATION_AVAILABLE = -1, 1, 2, 3, 8
WAITING_SIGNATURE = 13

LABEL_1971 = "1971 - Compte fonction présent à tort"
LABEL_1984 = "1984 - L'identifiant unique de la PJ a déjà été intégré dans HELIOS"
_SANDBOX = " (libellé du bac à sable)"


@dataclass(frozen=True)
class HeliosKnobs:
    """The comptable's knobs (``GET``/``POST /sandbox/helios/knobs``); rates in [0, 1]."""

    ko_rate: float = 0.0
    partial_rate: float = 0.0
    duplicate_rate: float = 0.0
    """A PES_Retour listed twice under two ids; a status poll answering the previous state."""
    retour_rate: float = 0.0
    unknown_cod_col: tuple[str, ...] = ("999",)
    unknown_cod_bud: tuple[str, ...] = ("99",)
    signature_check: str = "s2low"

    RATES = ("ko_rate", "partial_rate", "duplicate_rate", "retour_rate")

    def updated(self, changes: Mapping[str, Any]) -> HeliosKnobs:
        """A copy with ``changes`` (ValidationError naming each bad field)."""
        names = {f.name for f in dataclasses.fields(self)}
        reasons = [Reason(k, "unknown", f"unknown knob {k!r}") for k in changes if k not in names]
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key in self.RATES:
                if not isinstance(value, int | float) or not 0 <= value <= 1:
                    reasons.append(Reason(key, "range", f"{key} is a rate in [0, 1]"))
                values[key] = float(value) if isinstance(value, int | float) else value
            elif key in ("unknown_cod_col", "unknown_cod_bud"):
                values[key] = tuple(str(v) for v in value)
            elif key == "signature_check":
                if value not in ("s2low", "helios"):
                    reasons.append(Reason(key, "value", "signature_check is s2low or helios"))
                values[key] = value
        if reasons:
            raise ValidationError("sandbox Hélios knobs refused", reasons=reasons)
        return dataclasses.replace(self, **values)


@dataclass
class HeliosEntry:
    status: int
    at: datetime
    message: str


@dataclass
class PesTransaction:
    """A row of ``helios_transactions``."""

    id: int
    login: str
    filename: str
    sha1: str
    content: bytes
    posted_at: datetime
    history: list[HeliosEntry] = field(default_factory=list)
    pes: PesAller | None = None
    acquit: bytes | None = None
    outcome: str | None = None
    repeat_previous: bool = False

    @property
    def status(self) -> int:
        return self.history[-1].status

    def set_status(self, status: int, at: datetime, message: str) -> None:
        self.history.append(HeliosEntry(status, at, message))

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id, "login": self.login, "filename": self.filename, "sha1": self.sha1,
            "status": self.status, "outcome": self.outcome,
            "nom_fic": self.pes.nom_fic if self.pes else None,
            "history": [
                {"status": e.status, "at": e.at.isoformat(), "message": e.message}
                for e in self.history
            ],
        }


@dataclass
class PesRetour:
    """A row of ``helios_retour``."""

    id: int
    login: str
    filename: str
    received_at: datetime
    content: bytes
    read: bool = False


@dataclass(frozen=True)
class _Draw:
    ko: bool
    partial: bool
    retour: bool
    duplicate: bool


class HeliosDesk:
    """PES transactions and PES_Retour of the sandbox TdT (see the module docstring)."""

    def __init__(self, state: TdtState, knobs: HeliosKnobs | None = None) -> None:
        self.state = state
        self.initial_knobs = knobs or HeliosKnobs()
        self.reset()

    def reset(self) -> None:
        self.knobs = self.initial_knobs
        self.transactions: dict[int, PesTransaction] = {}
        self.retours: dict[int, PesRetour] = {}
        self._integrated: set[tuple[str, ...]] = set()
        self._last_id = 0
        self._last_retour = 0

    # -- import -------------------------------------------------------------------------

    def import_pes(
        self, account: SandboxAccount, filename: str, content: bytes, must_signed: bool
    ) -> PesTransaction | str:
        """The new transaction, or S²LOW's refusal text."""
        state = self.state
        state.count("pes_imports_received", account.login)
        limit = state.config.max_total_bytes
        if len(content) > limit:
            return (f"Taille de fichier supérieur à la limite autorisée "
                    f"({limit // 1024 // 1024} Mo maximum).")
        if not content:
            return "Échec lors du téléchargement du fichier"
        sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        if any(t.sha1 == sha1 for t in self.transactions.values()):
            state.count("pes_duplicate_imports", account.login)
            return "doublon détecté. Ce fichier a déjà été posté."
        self._last_id += 1
        now = state.now()
        transaction = PesTransaction(self._last_id, account.login, filename, sha1, content, now)
        self.transactions[transaction.id] = transaction
        state.count("pes_transactions_created", account.login)
        rng = state.outcome_rng
        knobs = self.knobs
        draw = _Draw(
            ko=rng.random() < knobs.ko_rate, partial=rng.random() < knobs.partial_rate,
            retour=rng.random() < knobs.retour_rate,
            duplicate=rng.random() < knobs.duplicate_rate,
        )
        if must_signed:
            transaction.set_status(WAITING_SIGNATURE, now, "Fichier en attente d'être signé")
            return transaction
        transaction.set_status(POSTED, now, "Fichier bien reçu par la plate-forme S2low")
        self._start_life(transaction, account, draw)
        return transaction

    def _start_life(self, transaction: PesTransaction, account: SandboxAccount,
                    draw: _Draw) -> None:
        schedule = self.state.config.schedule
        now = self.state.now()
        checked_at = now + timedelta(seconds=schedule.accept_after)
        transmitted_at = now + timedelta(seconds=max(schedule.transmit_after,
                                                     schedule.accept_after))
        answered_at = now + timedelta(seconds=max(schedule.acknowledge_after,
                                                  schedule.transmit_after,
                                                  schedule.accept_after))
        self.state.schedule(checked_at, lambda: self._s2low_checks(transaction, checked_at))
        self.state.schedule(transmitted_at, lambda: self._transmit(transaction, transmitted_at))
        self.state.schedule(
            answered_at, lambda: self._acknowledge(transaction, account, draw, answered_at)
        )
        if draw.retour:
            retour_at = answered_at + timedelta(seconds=schedule.prefecture_message_after)
            self.state.schedule(
                retour_at, lambda: self._retour(transaction, retour_at, draw.duplicate)
            )

    def _s2low_checks(self, transaction: PesTransaction, at: datetime) -> None:
        if transaction.status != POSTED:
            return
        problem = self._s2low_problem(transaction)
        if problem is not None:
            transaction.set_status(ERROR, at, problem)
            self.state.count("pes_errors", transaction.login)
            return
        transaction.set_status(WAITING, at, "En attente de transmission")

    def _s2low_problem(self, transaction: PesTransaction) -> str | None:
        try:
            pes = read_aller(transaction.content)
        except ValidationError as exc:
            return f"Le fichier PES n'est pas valide : {exc.message}"
        transaction.pes = pes
        if not pes.nom_fic:
            return "Le nom du fichier (NomFic) est absent"
        lengths = (("IdColl", pes.id_coll, 14), ("CodCol", pes.cod_col, 3),
                   ("IdPost", pes.id_post, 6), ("CodBud", pes.cod_bud, 2))
        for name, found, width in lengths:
            if found is not None and len(found) > width:
                return f"Le champ {name} dépasse {width} caractères"
        for other in self.transactions.values():
            if (other.id != transaction.id and other.pes is not None
                    and other.status != ERROR
                    and (other.pes.nom_fic, other.pes.cod_col) == (pes.nom_fic, pes.cod_col)):
                return (f"Le nom de fichier {pes.nom_fic} a déjà été utilisé pour la "
                        f"collectivité {pes.cod_col}")
        if self.knobs.signature_check == "s2low" and any(not s.intact for s in pes.signatures):
            return "La signature du fichier PES n'est pas valide"
        return None

    def _transmit(self, transaction: PesTransaction, at: datetime) -> None:
        if transaction.status == WAITING:
            transaction.set_status(TRANSMITTED, at, "Transmis")

    # -- the comptable ---------------------------------------------------------------------

    def _acknowledge(self, transaction: PesTransaction, account: SandboxAccount, draw: _Draw,
                     at: datetime) -> None:
        if transaction.status != TRANSMITTED or transaction.pes is None:
            return
        pes = transaction.pes
        elements = self.judge(pes, account, draw)
        transaction.acquit = build_acquit(pes, elements, local_day(at))
        accepted = sum(1 for e in elements if e.accepted)
        transaction.outcome = (
            "acknowledged" if accepted == len(elements)
            else "rejected" if accepted == 0 else "partially-accepted"
        )
        transaction.repeat_previous = draw.duplicate
        transaction.set_status(INFORMATION_AVAILABLE, at, "Information disponible")
        self.state.count(f"pes_{transaction.outcome.replace('-', '_')}", transaction.login)

    def judge(self, pes: PesAller, account: SandboxAccount, draw: _Draw) -> list[AckElement]:
        """The elements of the PES_ACQUIT answering ``pes`` (and what they integrate)."""
        elements = elements_for(pes)
        file_error: AckError | None = None
        id_coll = pes.id_coll or ""
        if not is_valid_siret(id_coll) or id_coll[:9] != account.siren:
            file_error = AckError("ERREUR_SIRET", f"Le SIRET {id_coll} de la collectivité ne "
                                  "correspond pas au budget dans HELIOS" + _SANDBOX)
        elif pes.cod_col in self.knobs.unknown_cod_col or pes.cod_bud in self.knobs.unknown_cod_bud:
            file_error = AckError("ERREUR_CODE_COLLECTIVITE_BUDGET",
                                  f"Le budget {pes.cod_col}/{pes.cod_bud} est inconnu dans le "
                                  f"poste {pes.id_post}" + _SANDBOX)
        elif self.knobs.signature_check == "helios" and any(
                not s.intact for s in pes.signatures):
            file_error = AckError("ERREUR_SIGNATURE_INVALIDE",
                                  "La signature du flux est invalide" + _SANDBOX)
        if file_error is not None:
            for element in elements:
                element.errors.append(file_error)
            return elements
        keys: list[tuple[str, ...] | None] = []
        bordereaux = iter(pes.bordereaux)
        for element in elements:
            key: tuple[str, ...] | None = None
            if element.id_unique is not None:
                key = ("pj", id_coll, element.id_unique)
                if key in self._integrated:
                    element.errors.append(AckError("ERREUR_DOUBLON_PJ", LABEL_1984))
            elif element.domain in ("5", "6"):
                bordereau = next(bordereaux)
                key = ("bordereau", id_coll, pes.cod_col or "", pes.cod_bud or "",
                       element.domain, bordereau.exercice or "", bordereau.id_bord or "")
                if key in self._integrated:
                    element.errors.append(AckError(
                        "ERREUR_DOUBLON_BORDEREAU",
                        f"Le bordereau {bordereau.id_bord} de l'exercice {bordereau.exercice} "
                        "a déjà été intégré dans HELIOS" + _SANDBOX))
            keys.append(key)
        if draw.ko:
            for element in elements:
                _reject(element)
        elif draw.partial and len(elements) >= 2:
            _reject(elements[-1])
        for element, key in zip(elements, keys, strict=True):
            if element.accepted and key is not None:
                self._integrated.add(key)
        return elements

    def _retour(self, transaction: PesTransaction, at: datetime, duplicate: bool) -> None:
        if transaction.pes is None:
            return
        content = build_pes_retour(transaction.pes, local_day(at))
        for _ in range(2 if duplicate else 1):
            self._last_retour += 1
            name = f"PES_RETOUR_{transaction.id}_{self._last_retour}.xml"
            self.retours[self._last_retour] = PesRetour(
                self._last_retour, transaction.login, name, at, content
            )
            self.state.count("pes_retours", transaction.login)

    # -- reads ------------------------------------------------------------------------------

    def transaction(self, transaction_id: int) -> PesTransaction | None:
        return self.transactions.get(transaction_id)

    def status_entry(self, transaction: PesTransaction) -> HeliosEntry:
        """The current entry, or once the previous one (``duplicate_rate``: a late replica)."""
        if transaction.repeat_previous and len(transaction.history) > 1:
            transaction.repeat_previous = False
            self.state.fault_counters["pes_status_replayed"] += 1
            return transaction.history[-2]
        return transaction.history[-1]

    def unread_retours(self, login: str) -> list[PesRetour]:
        return [r for r in self.retours.values() if r.login == login and not r.read]

    def stats(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for t in self.transactions.values():
            key = t.outcome or f"status_{t.status}"
            outcomes[key] = outcomes.get(key, 0) + 1
        counters = self.state.counters
        by_login: dict[str, int] = {}
        for t in self.transactions.values():
            by_login[t.login] = by_login.get(t.login, 0) + 1
        return {"transactions": len(self.transactions), "outcomes": outcomes,
                "imports_received": counters["pes_imports_received"],
                "duplicate_imports": counters["pes_duplicate_imports"],
                "transactions_by_login": by_login,
                "retours": len(self.retours), "knobs": dataclasses.asdict(self.knobs)}


def _reject(element: AckElement) -> None:
    if element.id_unique is not None or element.domain not in ("5", "6"):
        element.errors.append(AckError("ERREUR_AUTRE", LABEL_1971))
        return
    element.line_errors.append(LineError("1", "1", AckError("ERREUR_AUTRE", LABEL_1971)))
