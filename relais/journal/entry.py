"""``JournalEntry``: one flow's delivery journal entry for one partner (Avro
``JournalEntry``), keyed ``<flow_id>/<partner>`` on the journal topic.

The steps keep the acts' vocabulary and mean the same for every partner family:

- ``VALIDATED``: checked, nothing sent yet;
- ``POSTING``: the intent, published before the call: the call may have happened;
- ``POSTED``: the partner created something; ``partner_ref`` is its id;
- ``UNCERTAIN``: the partner can never tell whether an earlier call arrived;
- ``REFUSED``: the partner refused and created nothing: the flow's keys are free again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

Step = Literal["VALIDATED", "POSTING", "POSTED", "UNCERTAIN", "REFUSED"]
STEPS: tuple[Step, ...] = ("VALIDATED", "POSTING", "POSTED", "UNCERTAIN", "REFUSED")
#: Steps after which nothing is sent again for the flow.
DONE: frozenset[Step] = frozenset({"POSTED", "UNCERTAIN", "REFUSED"})


def journal_key(flow_id: str, partner: str) -> str:
    """The journal record key of a flow's entry for one partner (``<flow_id>/<partner>``):
    the topic is compacted per (flow, partner), so a flow's signature entry and its TdT
    entry live side by side."""
    return f"{flow_id}/{partner}"


def step_of(value: str) -> Step:
    """``value`` as a journal step; ValueError when it is none."""
    if value not in STEPS:
        raise ValueError(f"unknown journal step {value!r}")
    return value  # narrowed to Step by the test above


@dataclass(frozen=True)
class JournalEntry:
    flow_id: str
    flow_type: str
    member_siren: str
    partner: str
    step: Step
    idempotency_key: str
    account: str | None = None
    partner_ref: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None

    def moved(self, step: Step, **changes: Any) -> JournalEntry:
        """This entry at ``step`` (with ``changes``), stamped now."""
        return replace(self, step=step, updated_at=datetime.now(UTC), **changes)

    @property
    def journal_key(self) -> str:
        """This entry's record key on the journal topic."""
        return journal_key(self.flow_id, self.partner)

    def key(self, name: str) -> str | None:
        return self.keys.get(name)

    def to_record(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id, "flow_type": self.flow_type,
            "member_siren": self.member_siren, "partner": self.partner,
            "account": self.account, "step": self.step,
            "idempotency_key": self.idempotency_key, "partner_ref": self.partner_ref,
            "keys": dict(self.keys), "updated_at": self.updated_at or datetime.now(UTC),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JournalEntry:
        return cls(
            flow_id=record["flow_id"], flow_type=record["flow_type"],
            member_siren=record["member_siren"], partner=record["partner"],
            account=record.get("account"), step=step_of(record["step"]),
            idempotency_key=record["idempotency_key"], partner_ref=record.get("partner_ref"),
            keys=dict(record.get("keys") or {}), updated_at=record.get("updated_at"),
        )
