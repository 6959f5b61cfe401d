"""What the sandbox TdT remembers and how its transactions move.

State changes are driven by the injected clock: each API call first runs
:meth:`TdtState.advance`, which applies every scheduled event whose time has
come, in time order. An acte goes 1 (posted) → 3 (transmitted) → 4
(acknowledged, with an ``ARActe``) or -1 (error, with an ``AnomalieActe``: S²LOW
has no "refused" state, it records the prefecture's anomaly as an error whose
message carries the anomaly); a cancellation takes an acknowledged acte to 0.

Randomness is split in two seeded streams so that runs are reproducible: the
*outcome* stream draws a fixed number of values per acte when it is posted
(anomaly? prefecture message? which one? early? duplicated?), whatever the
knobs, and the *fault* stream draws per call (injected errors, stale status,
shuffled listing). Polling more or less often never changes an acte's fate.

Methods are synchronous and never await: each call's check-then-record is
atomic on the event loop.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from relais.actes.archive import Transmission, read_transmission
from sandbox.tdt import messages
from sandbox.tdt.config import Faults, SandboxAccount, SandboxConfig
from sandbox.tdt.forms import RawForm
from sandbox.tdt.messages import Packed
from sandbox.tdt.validation import ActeSubmission

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

ERROR, CANCELLED, POSTED, TRANSMITTED, ACKNOWLEDGED = -1, 0, 1, 3, 4
DOCUMENT_RECEIVED, ACK_SENT, DOCUMENT_NO_ACK_DUE = 7, 8, 21
REPLY_TYPES_BY_DOCUMENT: dict[str, frozenset[str]] = {
    "2-1": frozenset({"2-2"}),
    "3-1": frozenset({"3-2", "3-3", "3-4"}),
    "4-1": frozenset({"4-2", "4-3", "4-4"}),
    "5-1": frozenset(),
}

try:
    _PARIS: Any = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # pragma: no cover - hosts without tz data
    _PARIS = UTC


def local_day(moment: datetime) -> date:
    """The calendar day in France of an instant (the dates @CTES messages carry)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_PARIS).date()


def system_clock() -> datetime:
    return datetime.now(UTC)


def form_fingerprint(form: RawForm) -> str:
    """A digest of a post's values and files: the same logical post gives the same digest."""
    digest = hashlib.sha256()
    for name in sorted(form.values):
        for value in form.values[name]:
            digest.update(b"v\0" + name.encode("iso-8859-1") + b"\0" + value + b"\0")
    for name in sorted(form.files):
        for file in form.files[name]:
            content = hashlib.sha256(file.data).hexdigest().encode()
            digest.update(b"f\0" + name.encode("iso-8859-1") + b"\0" + content + b"\0")
    return digest.hexdigest()


@dataclass
class StatusEntry:
    status: int
    at: datetime
    document: bytes | None = None
    message: str = ""


@dataclass
class Transaction:
    """Anything a member posted: an acte (1-1), a cancellation (6-1) or a reply."""

    id: int
    login: str
    type_code: str
    posted_at: datetime
    id_acte: str
    number: str
    decision_date: date | None
    nature_code: int | None
    subject: str
    idempotency_key: str | None
    fingerprint: str
    packed: Packed
    related_id: int | None = None
    history: list[StatusEntry] = field(default_factory=list)
    cancellation_id: int | None = None

    @property
    def status(self) -> int:
        return self.history[-1].status

    def set_status(
        self, status: int, at: datetime, document: bytes | None = None, message: str = ""
    ) -> None:
        self.history.append(StatusEntry(status, at, document, message))

    def summary(self) -> dict[str, Any]:
        """The row of the transaction listing."""
        return {
            "id": str(self.id),
            "type": self.type_code,
            "number": self.number,
            "decision_date": self.decision_date.isoformat() if self.decision_date else None,
            "nature_code": self.nature_code,
            "subject": self.subject,
            "status": self.status,
            "submission_date": local_day(self.posted_at).isoformat(),
            "id_acte": self.id_acte,
            "idempotency_key": self.idempotency_key,
            "related_transaction_id": str(self.related_id) if self.related_id else None,
        }


@dataclass
class PrefectureDocument:
    """A prefecture message for a member, listed until marked read."""

    id: int
    login: str
    type_code: str
    related_transaction_id: int
    number: str
    id_acte: str
    visible_at: datetime
    courrier_date: date
    packed: Packed
    status: int
    read: bool = False
    duplicate_of: int | None = None
    replies: list[int] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The row of ``api/list_document_prefecture.php`` (fields of the real API + date)."""
        return {
            "id": str(self.id),
            "type": self.type_code,
            "related_transaction_id": str(self.related_transaction_id),
            "number": self.number,
            "date": self.courrier_date.isoformat(),
            "last_status_id": self.status,
            "unique_id": f"{self.id_acte}-{self.type_code}",
        }


@dataclass(frozen=True)
class _Fate:
    """What will happen to one acte, drawn when it is posted."""

    anomaly: bool
    prefecture_message: str | None
    early: bool
    duplicated: bool


class TdtState:
    """Transactions, prefecture documents, idempotency keys and counters of one sandbox."""

    def __init__(self, config: SandboxConfig, clock: Clock, rng: random.Random) -> None:
        self.config = config
        self.faults: Faults = config.faults
        self.clock = clock
        self._seed = rng.getrandbits(64)
        self.reset(keep_faults=True)

    def reset(self, *, keep_faults: bool = False) -> None:
        """Forget every transaction, document, key and counter; re-seed the random streams.

        The fault knobs go back to the configuration's unless ``keep_faults``.
        """
        self.outcome_rng = random.Random(self._seed)  # noqa: S311 - simulation
        self.fault_rng = random.Random(self._seed ^ 0x5EED)  # noqa: S311 - simulation
        if not keep_faults:
            self.faults = self.config.faults
        self.transactions: dict[int, Transaction] = {}
        self.documents: dict[int, PrefectureDocument] = {}
        self.keys: dict[tuple[str, str, str], int] = {}
        self._events: list[tuple[datetime, int, Callable[[], None]]] = []
        self._event_seq = 0
        self._last_id = 0
        self._envelope_seq: Counter[tuple[str, date]] = Counter()
        self.counters: Counter[str] = Counter()
        self.fault_counters: Counter[str] = Counter()
        self.member_counters: dict[str, Counter[str]] = {
            a.login: Counter() for a in self.config.accounts
        }

    # -- bookkeeping ---------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _sequence(self, login: str, day: date) -> int:
        self._envelope_seq[(login, day)] += 1
        return self._envelope_seq[(login, day)]

    def _schedule(self, at: datetime, action: Callable[[], None]) -> None:
        self._event_seq += 1
        heapq.heappush(self._events, (at, self._event_seq, action))

    def count(self, name: str, login: str | None = None, amount: int = 1) -> None:
        self.counters[name] += amount
        if login is not None:
            self.member_counters.setdefault(login, Counter())[name] += amount

    def advance(self) -> None:
        """Apply every scheduled event due at the clock's current time."""
        now = self.now()
        while self._events and self._events[0][0] <= now:
            _, _, action = heapq.heappop(self._events)
            action()

    def draw_fault(self, rate: float) -> bool:
        """One draw of the fault stream (drawn even when ``rate`` is 0, for reproducibility)."""
        return self.fault_rng.random() < rate

    # -- actes ----------------------------------------------------------------------------

    def by_key(self, login: str, kind: str, key: str) -> Transaction | None:
        found = self.keys.get((login, kind, key))
        return self.transactions.get(found) if found is not None else None

    def same_acte(self, login: str, submission: ActeSubmission) -> list[Transaction]:
        """Actes of ``login`` with the same number, decision date and nature."""
        return [
            t
            for t in self.transactions.values()
            if t.login == login
            and t.type_code == "1-1"
            and t.number == submission.number
            and t.decision_date == submission.decision_date
            and t.nature_code == submission.nature_code
        ]

    def live_with_number(self, login: str, number: str) -> Transaction | None:
        """An acte of ``login`` with ``number`` that is not in error or cancelled."""
        return next(
            (
                t
                for t in self.transactions.values()
                if t.login == login
                and t.type_code == "1-1"
                and t.number == number
                and t.status not in (ERROR, CANCELLED)
            ),
            None,
        )

    def _draw_fate(self) -> _Fate:
        rng = self.outcome_rng
        u_anomaly, u_message, u_type, u_early, u_duplicate = (rng.random() for _ in range(5))
        types = self.config.prefecture_message_types
        anomaly = u_anomaly < self.faults.anomaly_rate
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
        """The acte's archive for today's next envelope; ValidationError if unbuildable."""
        day = local_day(self.now())
        return messages.acte_transmission(
            submission,
            account,
            self.config.classification,
            trigram=self.config.trigram,
            day=day,
            sequence=self._envelope_seq[(account.login, day)] + 1,
        )

    def record_acte(
        self,
        account: SandboxAccount,
        submission: ActeSubmission,
        transmission: Transmission,
        *,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Transaction:
        """Record a validated acte in state 1 and schedule its life."""
        now = self.now()
        self._sequence(account.login, local_day(now))
        transaction = Transaction(
            id=self._next_id(),
            login=account.login,
            type_code="1-1",
            posted_at=now,
            id_acte=transmission.id_acte,
            number=submission.number,
            decision_date=submission.decision_date,
            nature_code=submission.nature_code,
            subject=submission.subject,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            packed=Packed(
                "1-1",
                read_transmission(transmission.archive_bytes)[transmission.message_name],
                transmission.archive_name,
                transmission.archive_bytes,
            ),
        )
        transaction.set_status(POSTED, now)
        self.transactions[transaction.id] = transaction
        if idempotency_key is not None:
            self.keys[(account.login, "acte", idempotency_key)] = transaction.id
        self.count("transactions_created", account.login)
        fate = self._draw_fate()
        schedule = self.config.schedule
        transmitted_at = now + timedelta(seconds=schedule.transmit_after)
        answered_at = now + timedelta(seconds=schedule.acknowledge_after)
        self._schedule(transmitted_at, lambda: self._transmit(transaction, transmitted_at))
        self._schedule(
            answered_at,
            lambda: self._answer(transaction, transmission, answered_at, fate.anomaly),
        )
        if fate.prefecture_message is not None:
            message_at = answered_at + timedelta(seconds=schedule.prefecture_message_after)
            if fate.early:
                message_at = transmitted_at
                self.fault_counters["early_document"] += 1
            type_code = fate.prefecture_message
            self._schedule(
                message_at,
                lambda: self._prefecture_message(
                    transaction, account, type_code, message_at, fate.duplicated
                ),
            )
        log.info(
            "sandbox_tdt_acte_recorded",
            transaction_id=transaction.id,
            login=account.login,
            id_acte=transaction.id_acte,
            anomaly=fate.anomaly,
            prefecture_message=fate.prefecture_message,
        )
        return transaction

    def _transmit(self, transaction: Transaction, at: datetime) -> None:
        if transaction.status == POSTED:
            transaction.set_status(TRANSMITTED, at)

    def _answer(
        self, transaction: Transaction, transmission: Transmission, at: datetime, anomaly: bool
    ) -> None:
        day = local_day(at)
        classification = self.config.classification
        if anomaly:
            document = messages.anomalie_acte(
                transmission,
                day,
                classification,
                nature=self.config.anomaly_nature,
                detail=self.config.anomaly_detail,
            )
            message = f"AnomalieActe {self.config.anomaly_nature} : {self.config.anomaly_detail}"
            transaction.set_status(ERROR, at, document, message)
        else:
            transaction.set_status(
                ACKNOWLEDGED, at, messages.ar_acte(transmission, day, classification)
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
        document = PrefectureDocument(
            id=self._next_id(),
            login=account.login,
            type_code=type_code,
            related_transaction_id=transaction.id,
            number=transaction.number,
            id_acte=transaction.id_acte,
            visible_at=at,
            courrier_date=day,
            packed=packed,
            status=status,
        )
        self.documents[document.id] = document
        self.count("prefecture_documents", account.login)
        if duplicated:
            copy = PrefectureDocument(
                id=self._next_id(),
                login=account.login,
                type_code=type_code,
                related_transaction_id=transaction.id,
                number=transaction.number,
                id_acte=transaction.id_acte,
                visible_at=at,
                courrier_date=day,
                packed=packed,
                status=status,
                duplicate_of=document.id,
            )
            self.documents[copy.id] = copy
            self.fault_counters["duplicate_document"] += 1

    # -- status -------------------------------------------------------------------------

    def status_entry(self, transaction: Transaction) -> StatusEntry:
        """The entry a status poll answers; with the duplicate fault, the previous one."""
        stale = self.draw_fault(self.faults.duplicate_rate)
        if stale and len(transaction.history) >= 2:
            self.fault_counters["stale_status"] += 1
            return transaction.history[-2]
        return transaction.history[-1]

    def transaction_for(self, login: str, transaction_id: str) -> Transaction | None:
        if not transaction_id.isdigit():
            return None
        found = self.transactions.get(int(transaction_id))
        return found if found is not None and found.login == login else None

    def list_transactions(self, login: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Listing rows of ``login``'s actes matching the given filters."""
        rows = []
        for transaction in self.transactions.values():
            if transaction.login != login or transaction.type_code != "1-1":
                continue
            row = transaction.summary()
            if filters.get("number") not in (None, transaction.number):
                continue
            if filters.get("decision_date") not in (None, row["decision_date"]):
                continue
            if filters.get("nature_code") not in (None, str(transaction.nature_code)):
                continue
            since = filters.get("min_submission_date")
            if since is not None and row["submission_date"] < since:
                continue
            rows.append(row)
        return rows

    # -- cancellation -------------------------------------------------------------------

    def cancel(
        self,
        account: SandboxAccount,
        acte: Transaction,
        *,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Transaction:
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
            type_code="6-1",
            posted_at=now,
            id_acte=acte.id_acte,
            number=acte.number,
            decision_date=acte.decision_date,
            nature_code=acte.nature_code,
            subject=acte.subject,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            packed=packed,
            related_id=acte.id,
        )
        cancellation.set_status(POSTED, now)
        acte.cancellation_id = cancellation.id
        self.transactions[cancellation.id] = cancellation
        if idempotency_key is not None:
            self.keys[(account.login, "cancel", idempotency_key)] = cancellation.id
        self.count("cancellations", account.login)
        schedule = self.config.schedule
        transmitted_at = now + timedelta(
            seconds=min(schedule.transmit_after, schedule.cancel_acknowledge_after)
        )
        acknowledged_at = now + timedelta(seconds=schedule.cancel_acknowledge_after)
        self._schedule(transmitted_at, lambda: self._transmit(cancellation, transmitted_at))
        self._schedule(
            acknowledged_at,
            lambda: self._acknowledge_cancellation(cancellation, acte, acknowledged_at),
        )
        return cancellation

    def _acknowledge_cancellation(
        self, cancellation: Transaction, acte: Transaction, at: datetime
    ) -> None:
        document = messages.ar_annulation(acte.id_acte, local_day(at))
        cancellation.set_status(ACKNOWLEDGED, at, document)
        acte.set_status(CANCELLED, at, document)

    # -- prefecture documents and replies -----------------------------------------------

    def visible_documents(self, login: str) -> list[PrefectureDocument]:
        """Unread documents of ``login`` in id order (shuffled under the out_of_order fault)."""
        listed = [d for d in self.documents.values() if d.login == login and not d.read]
        listed.sort(key=lambda d: d.id)
        if self.draw_fault(self.faults.out_of_order) and len(listed) > 1:
            self.fault_rng.shuffle(listed)
            self.fault_counters["shuffled_listing"] += 1
        return listed

    def document_for(self, login: str, document_id: str) -> PrefectureDocument | None:
        if not document_id.isdigit():
            return None
        found = self.documents.get(int(document_id))
        return found if found is not None and found.login == login else None

    def reply(
        self,
        account: SandboxAccount,
        document: PrefectureDocument,
        type_code: str,
        files: Sequence[tuple[str, bytes]],
        *,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Transaction:
        """Record a member reply to ``document`` and schedule its transmission."""
        now = self.now()
        day = local_day(now)
        packed = messages.member_reply(
            type_code,
            document.id_acte,
            document.courrier_date,
            files,
            account,
            trigram=self.config.trigram,
            day=day,
            sequence=self._envelope_seq[(account.login, day)] + 1,
        )
        self._sequence(account.login, day)
        acte = self.transactions[document.related_transaction_id]
        reply = Transaction(
            id=self._next_id(),
            login=account.login,
            type_code=type_code,
            posted_at=now,
            id_acte=document.id_acte,
            number=acte.number,
            decision_date=acte.decision_date,
            nature_code=acte.nature_code,
            subject=acte.subject,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            packed=packed,
            related_id=document.id,
        )
        reply.set_status(POSTED, now)
        self.transactions[reply.id] = reply
        document.replies.append(reply.id)
        document.status = ACK_SENT
        if idempotency_key is not None:
            self.keys[(account.login, "reply", idempotency_key)] = reply.id
        self.count("replies", account.login)
        schedule = self.config.schedule
        transmitted_at = now + timedelta(seconds=schedule.transmit_after)
        acknowledged_at = now + timedelta(
            seconds=max(schedule.transmit_after, schedule.reply_acknowledge_after)
        )
        self._schedule(transmitted_at, lambda: self._transmit(reply, transmitted_at))
        ack = messages.reply_acknowledgement(
            type_code, document.id_acte, local_day(acknowledged_at), document.courrier_date
        )
        if ack is not None:
            self._schedule(
                acknowledged_at, lambda: reply.set_status(ACKNOWLEDGED, acknowledged_at, ack)
            )
        return reply

    # -- counters -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The ``GET /sandbox/stats`` document."""
        names = (
            "posts_received",
            "transactions_created",
            "duplicate_posts",
            "idempotent_replays",
            "rejected_posts",
            "status_polls",
            "cancellations",
            "replies",
            "prefecture_documents",
            "documents_fetched",
            "documents_marked_read",
            "classification_fetches",
            "classification_requests",
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
