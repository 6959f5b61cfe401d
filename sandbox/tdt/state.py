"""What the sandbox TdT remembers and how its transactions move.

Everything S²LOW keeps in ``actes_transactions``, ``actes_transactions_workflow``,
``actes_envelopes`` and ``actes_included_files`` lives here, with the same identities:
transaction ids (actes, cancellations, replies, classification requests and the
prefecture's messages share one sequence, as in S²LOW), envelope ids (the archive a
transaction travels in, what ``actes_download_file.php?env=`` serves) and included-file ids
(``actes_download_file.php?file=``).

State changes are driven by the injected clock: each API call first runs
:meth:`TdtState.advance`, which applies every scheduled event whose time has come, in time
order. An acte goes 1 (posted) → 2 (accepted by the TdT's checks, waiting to be sent) → 3
(transmitted) → 4 (acknowledged, with an ``ARActe``) or
-1 (error, with an ``AnomalieActe``); one posted with ``en_attente`` (or by an account with
the ``CS`` permission) waits in 17, one posted with ``must_signed`` in 18, until the
sandbox-only control releases it. A cancellation (type 6) goes 1 → 2 → 3 → 4 and then
takes its acte to 0.

Randomness is split in two seeded streams so that runs are reproducible: the *outcome*
stream draws a fixed number of values per acte when it is posted (anomaly? prefecture
message? which one? early? duplicated?), whatever the knobs, and the *fault* stream draws per
call (injected errors, stale status, shuffled listing). Polling more or less often never
changes an acte's fate.

Methods are synchronous and never await: each call's check-then-record is atomic on the
event loop.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from relais.actes.archive import Transmission
from sandbox.common.clock import Clock
from sandbox.common.simulator import Simulator
from sandbox.tdt import messages
from sandbox.tdt.config import Faults, SandboxAccount, SandboxConfig
from sandbox.tdt.files import FileStore
from sandbox.tdt.messages import Packed
from sandbox.tdt.prefecture_xml import build_reponse_classification_sans_changement
from sandbox.tdt.validation import PARIS, ActeSubmission, extension_of

log = structlog.get_logger(__name__)

ERROR, CANCELLED, POSTED, WAITING_TO_TRANSMIT, TRANSMITTED, ACKNOWLEDGED = -1, 0, 1, 2, 3, 4
DOCUMENT_RECEIVED, ACK_SENT = 7, 8
WAITING_TO_POST, WAITING_TO_SIGN, DOCUMENT_NO_ACK_DUE = 17, 18, 21
WAITING_STATES = (WAITING_TO_POST, WAITING_TO_SIGN)


def local_day(moment: datetime) -> date:
    """The calendar day in France of an instant (the dates @CTES messages carry)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS).date()


@dataclass
class StatusEntry:
    status: int
    at: datetime
    document: bytes | None = None
    message: str = ""


@dataclass
class Envelope:
    """An archive as S²LOW stores it (``actes_envelopes``: ``file_path``, ``file_size``),
    on disk."""

    id: int
    login: str
    archive_name: str
    path: Path
    size: int


@dataclass
class IncludedFile:
    """A file of a transaction (``actes_included_files``), on disk."""

    id: int
    transaction_id: int
    name: str
    posted_filename: str
    mimetype: str
    path: Path
    size: int


@dataclass
class Transaction:
    """A row of ``actes_transactions``: an acte (type 1), a prefecture message (2–5), a
    member's reply (2–4 with ``type_reponse``), a cancellation (6) or a classification
    request (7)."""

    id: int
    login: str
    s2low_type: str
    type_code: str
    posted_at: datetime
    id_acte: str
    number: str
    decision_date: date | None
    nature_code: int | None
    nature_descr: str
    subject: str
    classification: str
    packed: Packed
    envelope_id: int
    related_id: int | None = None
    type_reponse: int | None = None
    history: list[StatusEntry] = field(default_factory=list)
    cancellation_id: int | None = None
    files: list[IncludedFile] = field(default_factory=list)
    read: bool = False
    duplicate_of: int | None = None
    replies: list[int] = field(default_factory=list)
    pending: Callable[[], None] | None = None

    @property
    def status(self) -> int:
        return self.history[-1].status

    def set_status(
        self, status: int, at: datetime, document: bytes | None = None, message: str = ""
    ) -> None:
        self.history.append(StatusEntry(status, at, document, message))

    def has_status(self, status: int) -> bool:
        return any(entry.status == status for entry in self.history)

    @property
    def is_prefecture_message(self) -> bool:
        return self.s2low_type in {"2", "3", "4", "5"} and self.type_reponse is None

    def summary(self) -> dict[str, Any]:
        """The sandbox's own description (``GET /sandbox/transactions/{id}``)."""
        return {
            "id": self.id,
            "type": self.s2low_type,
            "message": self.type_code,
            "number": self.number,
            "decision_date": self.decision_date.isoformat() if self.decision_date else None,
            "nature_code": self.nature_code,
            "subject": self.subject,
            "status": self.status,
            "id_acte": self.id_acte,
            "envelope_id": self.envelope_id,
            "related_transaction_id": self.related_id,
            "type_reponse": self.type_reponse,
            "read": self.read,
        }


class TransactionTable(dict[int, Transaction]):
    """The transactions by id, with what S²LOW looks up by column kept in indexes:
    the numbers each authority used (``isUnique``: any type), its actes' numbers
    (type 1) and the actes by IDActe (``getTransactionFromUniqueId``). S²LOW asks its
    database; a scan of every transaction per post made the sandbox's CPU per post grow
    with the number of transactions it holds. A transaction's login, type, number and
    IDActe never change once recorded; transactions are only added (``[id] = t``)."""

    def __init__(self) -> None:
        super().__init__()
        self._numbers: dict[tuple[str, str], set[str]] = {}
        self._actes_by_id_acte: dict[str, Transaction] = {}

    def __setitem__(self, key: int, transaction: Transaction) -> None:
        super().__setitem__(key, transaction)
        types = self._numbers.setdefault((transaction.login, transaction.number), set())
        types.add(transaction.s2low_type)
        if transaction.s2low_type == "1":
            self._actes_by_id_acte.setdefault(transaction.id_acte, transaction)

    def number_used(self, login: str, number: str, s2low_type: str | None = None) -> bool:
        """Whether the authority has a transaction with this number (of this type)."""
        types = self._numbers.get((login, number), set())
        return bool(types) and (s2low_type is None or s2low_type in types)

    def acte_by_id_acte(self, id_acte: str) -> Transaction | None:
        """The first acte (type 1) recorded with this IDActe."""
        return self._actes_by_id_acte.get(id_acte)


@dataclass(frozen=True)
class StoredActe:
    """An acte's archive (and its size) and posted files, written to disk before it is
    recorded."""

    archive: Path
    size: int
    files: tuple[Path, ...]

    def remove(self) -> None:
        for path in (self.archive, *self.files):
            path.unlink(missing_ok=True)


def _suffix(name: str) -> str:
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


@dataclass(frozen=True)
class _Fate:
    """What will happen to one acte, drawn when it is posted."""

    anomaly: bool
    prefecture_message: str | None
    early: bool
    duplicated: bool


class TdtState(Simulator[Faults]):
    """Transactions, envelopes, files and counters of one sandbox (clock, scheduled events,
    seeded streams and fault knobs: :class:`Simulator`)."""

    def __init__(self, config: SandboxConfig, clock: Clock, rng: random.Random) -> None:
        self.config = config
        self.store = FileStore(config.data_dir)
        super().__init__(clock, rng, config.faults)

    def reset(self, *, keep_faults: bool = False) -> None:
        """Forget every transaction, envelope and counter; re-seed the random streams.

        The fault knobs go back to the configuration's unless ``keep_faults``.
        """
        super().reset(keep_faults=keep_faults)
        self.store.clear()
        self.transactions: TransactionTable = TransactionTable()
        self.envelopes: dict[int, Envelope] = {}
        self.files: dict[int, IncludedFile] = {}
        self.classification = self.config.classification
        initial = messages.retour_classification(self.classification)
        self.received_classification: dict[str, tuple[date, bytes]] = {
            a.login: (self.classification.date_version, initial) for a in self.config.accounts
        }
        self._last_id = 0
        self._last_envelope = 0
        self._last_file = 0
        self._envelope_seq: Counter[tuple[str, date]] = Counter()
        self.member_counters = {a.login: Counter() for a in self.config.accounts}

    # -- bookkeeping ---------------------------------------------------------------------

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _sequence(self, login: str, day: date) -> int:
        self._envelope_seq[(login, day)] += 1
        return self._envelope_seq[(login, day)]

    def next_sequence(self, login: str, day: date) -> int:
        """The envelope counter the next archive of ``login`` will use on ``day``."""
        return self._envelope_seq[(login, day)] + 1

    def _envelope(self, login: str, packed: Packed, stored: Path | None = None) -> int:
        """Record an envelope: ``stored`` is its archive on disk, else ``packed``'s bytes
        are written there."""
        self._last_envelope += 1
        path = stored or self.store.save_bytes(packed.archive_bytes, ".tar.gz")
        self.envelopes[self._last_envelope] = Envelope(
            self._last_envelope, login, packed.archive_name, path, path.stat().st_size
        )
        return self._last_envelope

    def _file(
        self, transaction_id: int, name: str, posted: str, mimetype: str, source: Path | bytes,
    ) -> IncludedFile:
        """Record a file: ``source`` is already on disk, or bytes written there now."""
        self._last_file += 1
        path = self.store.save_bytes(source, _suffix(name)) if isinstance(source, bytes) \
            else source
        included = IncludedFile(self._last_file, transaction_id, name, posted, mimetype, path,
                                path.stat().st_size)
        self.files[included.id] = included
        return included

    def transaction(self, transaction_id: str | int | None) -> Transaction | None:
        """Any transaction by id (S²LOW's pages check the owner themselves)."""
        if isinstance(transaction_id, int):
            return self.transactions.get(transaction_id)
        text = (transaction_id or "").strip()
        return self.transactions.get(int(text)) if text.isdigit() else None

    def by_unique_id(self, unique_id: str) -> Transaction | None:
        """``ActesTransaction::getTransactionFromUniqueId``: the acte (type 1) with this IDActe."""
        return self.transactions.acte_by_id_acte(unique_id)

    # -- actes ----------------------------------------------------------------------------

    def number_taken(self, login: str, number: str) -> bool:
        """``ActesTransaction::isUnique`` negated: any transaction of the authority."""
        return self.transactions.number_used(login, number)

    def same_acte(self, login: str, form_number: str) -> bool:
        return self.transactions.number_used(login, form_number, "1")

    def _draw_fate(self, forced_anomaly: bool) -> _Fate:
        rng = self.outcome_rng
        u_anomaly, u_message, u_type, u_early, u_duplicate = (rng.random() for _ in range(5))
        types = self.config.prefecture_message_types
        anomaly = forced_anomaly or u_anomaly < self.faults.anomaly_rate
        message = None
        if not anomaly and types and u_message < self.faults.prefecture_message_rate:
            message = types[min(int(u_type * len(types)), len(types) - 1)]
        return _Fate(
            anomaly=anomaly,
            prefecture_message=message,
            early=u_early < self.faults.out_of_order,
            duplicated=u_duplicate < self.faults.duplicate_rate,
        )

    def build_acte(self, account: SandboxAccount, submission: ActeSubmission) -> Transmission:
        """The acte's transmission for today's next envelope (names and XML; the archive is
        :meth:`write_acte_archive`'s); ValidationError if unbuildable."""
        day = local_day(self.now())
        transmission = messages.acte_transmission(
            submission,
            account,
            self.classification,
            trigram=self.config.trigram,
            day=day,
            sequence=self.next_sequence(account.login, day),
        )
        # taken now, as S²LOW takes its serial before writing the archive (a post refused
        # for its archive's size has used it): the archive is written after an await
        self._sequence(account.login, day)
        return transmission

    def write_acte(self, transmission: Transmission, submission: ActeSubmission) -> StoredActe:
        """The acte's tar.gz and its posted files written under the store, copied in chunks
        from their uploads (blocking: run it in a thread); :meth:`StoredActe.remove` when the
        post is refused."""
        archive = self.store.new_path(".tar.gz")
        size = messages.write_acte_archive(archive, transmission, submission)
        names = (transmission.metadata.main_file, *transmission.metadata.annex_files)
        files = tuple(
            self.store.save(posted.upload.opened(), _suffix(name))
            for name, posted in zip(names, (submission.main, *submission.annexes), strict=True)
        )
        return StoredActe(archive, size, files)

    def record_acte(
        self,
        account: SandboxAccount,
        submission: ActeSubmission,
        transmission: Transmission,
        stored: StoredActe,
        *,
        initial_status: int,
        out_of_classification: str | None,
    ) -> Transaction:
        """Record an accepted acte in ``initial_status`` (1, 17 or 18) and schedule its life.

        ``stored`` is its tar.gz and posted files on disk (:meth:`write_acte`).
        ``out_of_classification`` (matières or typologies the authority's
        classification does not have) makes the préfecture answer with an ``AnomalieActe``.
        """
        now = self.now()
        packed = Packed(
            "1-1",
            transmission.message_xml,  # as packed: the archive is not unpacked again
            transmission.archive_name,
            b"",  # on disk: the envelope's file
        )
        transaction = Transaction(
            id=self._next_id(),
            login=account.login,
            s2low_type="1",
            type_code="1-1",
            posted_at=now,
            id_acte=transmission.id_acte,
            number=submission.number,
            decision_date=submission.decision_date,
            nature_code=submission.nature_code,
            nature_descr=submission.nature_descr,
            subject=submission.subject,
            classification=submission.classification,
            packed=packed,
            envelope_id=self._envelope(account.login, packed, stored.archive),
        )
        names = (transmission.metadata.main_file, *transmission.metadata.annex_files)
        for name, posted, path in zip(names, (submission.main, *submission.annexes),
                                      stored.files, strict=True):
            transaction.files.append(
                self._file(transaction.id, name, posted.posted_name, posted.mimetype, path)
            )
        messages_by_status = {
            POSTED: "Dépôt initial",
            WAITING_TO_POST: "Dépôt dans un état d'attente",
            WAITING_TO_SIGN: "En attente d'être signé",
        }
        transaction.set_status(initial_status, now, message=messages_by_status[initial_status])
        self.transactions[transaction.id] = transaction
        self.count("transactions_created", account.login)
        fate = self._draw_fate(out_of_classification is not None)

        def start() -> None:
            self._start_life(transaction, account, transmission, fate, out_of_classification)

        if initial_status == POSTED:
            start()
        else:
            transaction.pending = start
        log.debug(
            "sandbox_tdt.acte_recorded",
            transaction_id=transaction.id,
            login=account.login,
            id_acte=transaction.id_acte,
            status=initial_status,
            anomaly=fate.anomaly,
            prefecture_message=fate.prefecture_message,
        )
        return transaction

    def release(self, transaction: Transaction, message: str = "Dépôt initial") -> bool:
        """Move an acte waiting in 17 or 18 to 1 (posted) and start its life."""
        if transaction.status not in WAITING_STATES or transaction.pending is None:
            return False
        transaction.set_status(POSTED, self.now(), message=message)
        start, transaction.pending = transaction.pending, None
        start()
        return True

    def _start_life(
        self,
        transaction: Transaction,
        account: SandboxAccount,
        transmission: Transmission,
        fate: _Fate,
        out_of_classification: str | None,
    ) -> None:
        now = self.now()
        schedule = self.config.schedule
        transmitted_at = now + timedelta(seconds=schedule.transmit_after)
        answered_at = now + timedelta(seconds=schedule.acknowledge_after)
        self._schedule_transmission(transaction, now, transmitted_at)
        self.schedule(
            answered_at,
            lambda: self._answer(
                transaction, transmission, answered_at, fate.anomaly, out_of_classification
            ),
        )
        if fate.prefecture_message is not None:
            message_at = answered_at + timedelta(seconds=schedule.prefecture_message_after)
            if fate.early:
                message_at = transmitted_at
                self.fault_counters["early_document"] += 1
            type_code = fate.prefecture_message
            self.schedule(
                message_at,
                lambda: self._prefecture_message(
                    transaction, account, type_code, message_at, fate.duplicated
                ),
            )

    def _schedule_transmission(
        self, transaction: Transaction, now: datetime, transmitted_at: datetime
    ) -> None:
        """2 (accepted by the TdT's checks) then 3 (sent to the ministry's platform)."""
        accepted_at = min(
            now + timedelta(seconds=self.config.schedule.accept_after), transmitted_at
        )
        self.schedule(accepted_at, lambda: self._accept(transaction, accepted_at))
        self.schedule(transmitted_at, lambda: self._transmit(transaction, transmitted_at))

    def _accept(self, transaction: Transaction, at: datetime) -> None:
        if transaction.status == POSTED:
            transaction.set_status(
                WAITING_TO_TRANSMIT, at, message="Accepté par le TdT : validation OK"
            )

    def _transmit(self, transaction: Transaction, at: datetime) -> None:
        if transaction.status in (POSTED, WAITING_TO_TRANSMIT):
            transaction.set_status(TRANSMITTED, at, message="Transmis au MIOCT")

    def _answer(
        self,
        transaction: Transaction,
        transmission: Transmission,
        at: datetime,
        anomaly: bool,
        out_of_classification: str | None,
    ) -> None:
        day = local_day(at)
        classification = self.classification
        if anomaly:
            detail = out_of_classification or self.config.anomaly_detail
            document = messages.anomalie_acte(
                transmission, day, classification, nature=self.config.anomaly_nature, detail=detail
            )
            message = f"AnomalieActe {self.config.anomaly_nature} : {detail}"
            transaction.set_status(ERROR, at, document, message)
        else:
            transaction.set_status(
                ACKNOWLEDGED,
                at,
                messages.ar_acte(transmission, day, classification),
                "Reçu par le MIOCT le " + day.isoformat(),
            )

    def _prefecture_message(
        self,
        transaction: Transaction,
        account: SandboxAccount,
        type_code: str,
        at: datetime,
        duplicated: bool,
    ) -> None:
        if transaction.status in (ERROR, CANCELLED) or transaction.cancellation_id is not None:
            return
        day = local_day(at)
        packed = messages.prefecture_message(
            type_code, transaction.id_acte, account, day, self._sequence(account.login, day)
        )
        status = DOCUMENT_NO_ACK_DUE if type_code in {"2-1", "5-1"} else DOCUMENT_RECEIVED
        envelope_id = self._envelope(account.login, packed)
        copies = 2 if duplicated else 1
        first: int | None = None
        for _ in range(copies):
            document = Transaction(
                id=self._next_id(),
                login=account.login,
                s2low_type=type_code[0],
                type_code=type_code,
                posted_at=at,
                id_acte=transaction.id_acte,
                number=transaction.number,
                decision_date=day,
                nature_code=transaction.nature_code,
                nature_descr=transaction.nature_descr,
                subject=transaction.subject,
                classification=transaction.classification,
                packed=packed,
                envelope_id=envelope_id,
                related_id=transaction.id,
                duplicate_of=first,
            )
            document.set_status(status, at, packed.message_xml, "Document reçu")
            self.transactions[document.id] = document
            if first is None:
                first = document.id
                self.count("prefecture_documents", account.login)
            else:
                self.fault_counters["duplicate_document"] += 1

    # -- status -------------------------------------------------------------------------

    def status_entry(self, transaction: Transaction) -> StatusEntry:
        """The entry a status poll answers; with the duplicate fault, the previous one."""
        stale = self.draw_fault(self.faults.duplicate_rate)
        if stale and len(transaction.history) >= 2:
            self.fault_counters["stale_status"] += 1
            return transaction.history[-2]
        return transaction.history[-1]

    def flux_retour(self, transaction: Transaction, status: int) -> bytes:
        """``getFluxRetour($status)``: the file stored with that status, or nothing."""
        for entry in reversed(transaction.history):
            if entry.status == status:
                return entry.document or b""
        return b""

    def list_actes(
        self,
        login: str,
        status_id: int,
        min_date: datetime | None = None,
        max_date: datetime | None = None,
    ) -> list[Transaction]:
        """``getListByStatusAndAuthority``: every type, ``last_status_id`` = ``status_id``,
        newest first; with ``min_date``/``max_date`` (naive, Paris time), only those that
        entered ``status_id`` between them (the workflow row's date)."""
        rows = []
        for t in self.transactions.values():
            if t.login != login or t.status != status_id:
                continue
            if min_date is not None or max_date is not None:
                entered = [
                    e.at.astimezone(PARIS).replace(tzinfo=None)
                    for e in t.history
                    if e.status == status_id
                ]
                entered = [
                    d
                    for d in entered
                    if (min_date is None or d >= min_date) and (max_date is None or d <= max_date)
                ]
                if not entered:
                    continue
            rows.append(t)
        return sorted(rows, key=lambda t: t.id, reverse=True)

    # -- cancellation -------------------------------------------------------------------

    def pending_cancellation(self, acte: Transaction) -> bool:
        """``hasPendingCancelTrans``: a cancellation of this acte in state 1 to 3."""
        return any(
            t.s2low_type == "6" and t.related_id == acte.id and 0 < t.status < 4
            for t in self.transactions.values()
        )

    def cancel(self, account: SandboxAccount, acte: Transaction) -> Transaction:
        """Record a 6-1 for an acknowledged acte and schedule its 6-2."""
        now = self.now()
        day = local_day(now)
        packed = messages.annulation(
            acte.id_acte,
            account,
            trigram=self.config.trigram,
            day=day,
            sequence=self._sequence(account.login, day),
        )
        cancellation = Transaction(
            id=self._next_id(),
            login=account.login,
            s2low_type="6",
            type_code="6-1",
            posted_at=now,
            id_acte=acte.id_acte,
            number=acte.number,
            decision_date=None,
            nature_code=None,
            nature_descr="",
            subject="",
            classification=acte.classification,
            packed=packed,
            envelope_id=self._envelope(account.login, packed),
            related_id=acte.id,
        )
        cancellation.set_status(POSTED, now, message="Dépôt initial")
        acte.cancellation_id = cancellation.id
        self.transactions[cancellation.id] = cancellation
        self.count("cancellations", account.login)
        schedule = self.config.schedule
        transmitted_at = now + timedelta(
            seconds=min(schedule.transmit_after, schedule.cancel_acknowledge_after)
        )
        acknowledged_at = now + timedelta(seconds=schedule.cancel_acknowledge_after)
        self._schedule_transmission(cancellation, now, transmitted_at)
        self.schedule(
            acknowledged_at,
            lambda: self._acknowledge_cancellation(cancellation, acte, acknowledged_at),
        )
        return cancellation

    def _acknowledge_cancellation(
        self, cancellation: Transaction, acte: Transaction, at: datetime
    ) -> None:
        document = messages.ar_annulation(acte.id_acte, local_day(at))
        cancellation.set_status(ACKNOWLEDGED, at, document, "Reçu par le MIOCT")
        acte.set_status(CANCELLED, at, document, "Acte annulé")

    # -- prefecture documents and replies -----------------------------------------------

    def unread_documents(self, login: str) -> list[Transaction]:
        """``listDocumentPrefectureNonLu``: unread prefecture messages by id (shuffled under
        the out_of_order fault)."""
        listed = [
            t
            for t in self.transactions.values()
            if t.login == login and t.is_prefecture_message and not t.read
        ]
        listed.sort(key=lambda t: t.id)
        if self.draw_fault(self.faults.out_of_order) and len(listed) > 1:
            self.fault_rng.shuffle(listed)
            self.fault_counters["shuffled_listing"] += 1
        return listed

    def reply(
        self,
        account: SandboxAccount,
        document: Transaction,
        type_code: str,
        type_reponse: int | None,
        files: Sequence[tuple[str, str, bytes]],
    ) -> Transaction:
        """Record a member reply to ``document`` and schedule its transmission.

        ``files`` are (posted name, content type, bytes), the letter first.
        """
        now = self.now()
        day = local_day(now)
        packed = messages.member_reply(
            type_code,
            document.id_acte,
            document.decision_date or day,
            [(f"file.{extension_of(mimetype)}", data) for _, mimetype, data in files],
            account,
            trigram=self.config.trigram,
            day=day,
            sequence=self.next_sequence(account.login, day),
        )
        self._sequence(account.login, day)
        reply = Transaction(
            id=self._next_id(),
            login=account.login,
            s2low_type=document.s2low_type,
            type_code=type_code,
            posted_at=now,
            id_acte=document.id_acte,
            number=document.number,
            decision_date=document.decision_date,
            nature_code=document.nature_code,
            nature_descr=document.nature_descr,
            subject=document.subject,
            classification=document.classification,
            packed=packed,
            envelope_id=self._envelope(account.login, packed),
            related_id=document.id,
            type_reponse=type_reponse,
        )
        for n, (name, mimetype, data) in enumerate(files, start=1):
            stored = f"{reply.id_acte}-{type_code}_{n}.{extension_of(mimetype)}"
            reply.files.append(self._file(reply.id, stored, name, mimetype, data))
        reply.set_status(POSTED, now, message="Dépôt initial")
        self.transactions[reply.id] = reply
        document.replies.append(reply.id)
        if document.status == DOCUMENT_RECEIVED:
            document.set_status(ACK_SENT, now, message="Réponse envoyée")
        self.count("replies", account.login)
        schedule = self.config.schedule
        transmitted_at = now + timedelta(seconds=schedule.transmit_after)
        acknowledged_at = now + timedelta(
            seconds=max(schedule.transmit_after, schedule.reply_acknowledge_after)
        )
        self._schedule_transmission(reply, now, transmitted_at)
        ack = messages.reply_acknowledgement(
            type_code, document.id_acte, local_day(acknowledged_at), document.decision_date or day
        )
        if ack is not None:
            self.schedule(
                acknowledged_at,
                lambda: reply.set_status(ACKNOWLEDGED, acknowledged_at, ack, "Reçu par le MIOCT"),
            )
        return reply

    # -- classification -----------------------------------------------------------------

    def requested_today(self, login: str) -> bool:
        """``ActesClassification::hasTodayRequest``."""
        today = local_day(self.now())
        return any(
            t.login == login and t.s2low_type == "7" and local_day(t.posted_at) == today
            for t in self.transactions.values()
        )

    def request_classification(self, account: SandboxAccount) -> Transaction:
        """A 7-1 asking for a classification newer than the account's; answered 7-3 when the
        account already has the sandbox's classification, 7-2 otherwise."""
        now = self.now()
        day = local_day(now)
        known = self.received_classification.get(account.login, (None, b""))[0]
        packed = messages.demande_classification(
            known,
            account,
            trigram=self.config.trigram,
            day=day,
            sequence=self._sequence(account.login, day),
        )
        request = Transaction(
            id=self._next_id(),
            login=account.login,
            s2low_type="7",
            type_code="7-1",
            posted_at=now,
            id_acte="",
            number="",
            decision_date=None,
            nature_code=None,
            nature_descr="",
            subject="",
            classification="",
            packed=packed,
            envelope_id=self._envelope(account.login, packed),
        )
        request.set_status(POSTED, now, message="Dépôt initial")
        self.transactions[request.id] = request
        self.count("classification_requests", account.login)
        schedule = self.config.schedule
        transmitted_at = now + timedelta(seconds=schedule.transmit_after)
        answered_at = now + timedelta(seconds=schedule.acknowledge_after)
        self._schedule_transmission(request, now, transmitted_at)
        self.schedule(answered_at, lambda: self._answer_classification(request, answered_at))
        return request

    def _answer_classification(self, request: Transaction, at: datetime) -> None:
        current = self.classification.date_version
        known = self.received_classification.get(request.login, (None, b""))[0]
        if known == current:
            document = build_reponse_classification_sans_changement(current)
            self.count("classification_unchanged", request.login)
        else:
            document = messages.retour_classification(self.classification)
            self.received_classification[request.login] = (current, document)
        request.set_status(ACKNOWLEDGED, at, document, "Classification reçue")

    # -- counters -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The ``GET /sandbox/stats`` document."""
        names = (
            "posts_received",
            "transactions_created",
            "signed_posts",
            "duplicate_posts",
            "rejected_posts",
            "status_polls",
            "cancellations",
            "replies",
            "prefecture_documents",
            "documents_fetched",
            "documents_marked_read",
            "stamped_fetched",
            "listings",
            "classification_fetches",
            "classification_requests",
            "classification_unchanged",
        )
        members = {}
        for account in self.config.accounts:
            counter = self.member_counters.get(account.login, Counter())
            members[account.login] = {
                "siren": account.siren,
                **{name: counter[name] for name in names},
            }
        return {
            **{name: self.counters[name] for name in names},
            "faults": dict(sorted(self.fault_counters.items())),
            "members": members,
            "clock": self.now().isoformat(),
        }
