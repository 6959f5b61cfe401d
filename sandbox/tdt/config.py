"""Configuration of the sandbox TdT: accounts, schedule, fault knobs.

Everything is a frozen dataclass. Fault knobs can also be changed while the
sandbox runs with ``POST /sandbox/faults`` and a JSON object of the
:class:`Faults` fields to change, e.g. ``{"error_rate": 0.2, "retry_after": 3}``;
``GET /sandbox/faults`` shows the knobs in force.

Fault knobs (rates are probabilities in [0, 1], drawn from the seeded rng; the first eight
are the transport knobs every partner sandbox has, :mod:`sandbox.common.faults`):

========================  ==============================================================
``latency_ms``            fixed delay added before every API answer
``jitter_ms``             extra delay, uniform in [0, jitter_ms]
``error_rate``            answer ``error_status`` (5xx) *before* doing anything
``error_status``          the status of injected errors (503 by default; 429 allowed)
``retry_after``           seconds sent in ``Retry-After`` with injected errors (None: none)
``timeout_rate``          handle the call, then wait ``hang_seconds`` before answering
``hang_seconds``          how long a "timeout" hangs (longer than the client's timeout)
``error_after_commit_rate``  on creations, record the transaction, *then* answer 5xx:
                          the "crash between call and record" the hub must reconcile
                          (with ``api/list_actes.php``, as against the real S²LOW)
``anomaly_rate``          fraction of actes answered by an ``AnomalieActe`` (state -1)
``duplicate_rate``        a prefecture message listed twice under two ids; a status
                          poll answering the transaction's previous state once more
``out_of_order``          document listing shuffled; a prefecture message listed
                          before the acte's ``ARActe`` is visible
``prefecture_message_rate``  fraction of acknowledged actes that later receive a
                          prefecture message (2-1, 3-1, 4-1 or 5-1)
========================  ==============================================================

Faults never lose a transaction: a transaction is either not recorded (the
error came first) or recorded and findable with ``api/list_actes.php``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, ClassVar

from relais.actes.classification import Classification
from relais.errors import ConfigurationError
from sandbox.common.faults import TransportFaults
from sandbox.tdt.classification import default_classification

MAX_ACTE_BYTES = 150 * 1024 * 1024
PREFECTURE_MESSAGE_TYPES = ("2-1", "3-1", "4-1", "5-1")


PERMISSIONS = ("RW", "CS", "TT", "RO", "NONE")


@dataclass(frozen=True)
class SandboxAccount:
    """A TdT account: HTTP Basic login and password, and the member it transmits for.

    ``permission`` is the user's right on S²LOW's actes module: ``RW`` (every call),
    ``CS`` (create and reply; its actes wait in state 17, no cancellation), ``TT``
    (transmit: cancel, request a classification), ``RO``/``NONE`` (refused).
    ``must_sign`` stands for a client that posts ``must_signed``: its actes wait in 18.
    ``authority_id`` is S²LOW's authority id in the listings (default: account's rank).
    """

    login: str
    password: str = field(repr=False)
    siren: str
    department: str
    name: str = ""
    arrondissement: int = 0
    nature_collectivite: int = 31
    return_email: str = "actes@example.org"
    permission: str = "RW"
    must_sign: bool = False
    authority_id: int = 0


DEFAULT_ACCOUNTS: tuple[SandboxAccount, ...] = (
    SandboxAccount(
        login="demo",
        password="demo",  # noqa: S106 - the public demo account of a loopback sandbox
        siren="210600235",
        department="006",
        name="Commune de démonstration",
    ),
)


@dataclass(frozen=True)
class Faults(TransportFaults):
    """The fault knobs: the transport ones (:mod:`sandbox.common.faults`) and S²LOW's;
    see the module docstring for what each one does."""

    RATES: ClassVar[tuple[str, ...]] = (
        *TransportFaults.RATES,
        "anomaly_rate",
        "duplicate_rate",
        "out_of_order",
        "prefecture_message_rate",
    )

    anomaly_rate: float = 0.0
    duplicate_rate: float = 0.0
    out_of_order: float = 0.0
    prefecture_message_rate: float = 0.0


@dataclass(frozen=True)
class Schedule:
    """When things happen, in seconds of the injected clock after the triggering call."""

    accept_after: float = 0.5
    transmit_after: float = 1.0
    acknowledge_after: float = 5.0
    prefecture_message_after: float = 30.0
    cancel_acknowledge_after: float = 5.0
    reply_acknowledge_after: float = 5.0


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox TdT needs (classification: :func:`default_classification`)."""

    accounts: tuple[SandboxAccount, ...] = DEFAULT_ACCOUNTS
    classification: Classification = field(default_factory=default_classification)
    faults: Faults = Faults()
    schedule: Schedule = Schedule()
    seed: int = 0
    trigram: str = "SBX"
    max_total_bytes: int = MAX_ACTE_BYTES
    max_file_uploads: int = 20
    restrict_classification_requests: bool = True
    prefecture_message_types: tuple[str, ...] = PREFECTURE_MESSAGE_TYPES
    data_dir: str = ""
    """Where received archives and files are kept (S²LOW's ``ACTES_FILES_UPLOAD_ROOT``), in a
    directory of this process's own under it; empty: under the system's temporary directory.
    Removed when the process ends."""
    anomaly_nature: str = "002"
    anomaly_detail: str = (
        "ODT-VERIF-01 : date de classification qui n'est pas à jour (anomalie simulée par le bac "
        "à sable)"
    )

    def account(self, login: str) -> SandboxAccount | None:
        return next((a for a in self.accounts if a.login == login), None)

    def authority_id(self, account: SandboxAccount) -> int:
        """S²LOW's authority id of ``account`` (its rank from 1 unless configured)."""
        return account.authority_id or self.accounts.index(account) + 1

    def check(self) -> None:
        """Raise ConfigurationError when the configuration cannot run."""
        problems = [r.message for r in self.faults.reasons()]
        logins = [a.login for a in self.accounts]
        if len(set(logins)) != len(logins):
            problems.append("account logins must be unique")
        for account in self.accounts:
            if account.permission not in PERMISSIONS:
                problems.append(f"{account.login}: permission is one of {', '.join(PERMISSIONS)}")
        if self.max_file_uploads < 1:
            problems.append("max_file_uploads must be at least 1")
        unknown = set(self.prefecture_message_types) - set(PREFECTURE_MESSAGE_TYPES)
        if unknown:
            problems.append(f"unknown prefecture message types: {sorted(unknown)}")
        if self.schedule.acknowledge_after < self.schedule.transmit_after:
            problems.append("acknowledge_after must not come before transmit_after")
        if problems:
            raise ConfigurationError("sandbox TdT configuration: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SandboxConfig:
        """Build from plain data (a JSON file): accounts, faults, schedule and scalar fields."""
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "accounts":
                values[key] = tuple(SandboxAccount(**account) for account in value)
            elif key == "faults":
                values[key] = Faults().updated(value)
            elif key == "schedule":
                values[key] = Schedule(**{k: float(v) for k, v in value.items()})
            elif key == "classification_date":
                values["classification"] = dataclasses.replace(
                    default_classification(), date_version=date.fromisoformat(value)
                )
            elif key == "prefecture_message_types":
                values[key] = tuple(value)
            elif key in {f.name for f in fields(cls)} and key != "classification":
                values[key] = value
            else:
                raise ConfigurationError(f"sandbox TdT configuration: unknown key {key!r}")
        return cls(**values)
