"""What one ``GetHistoDossier`` answer means for the flow waiting on its signature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from connectors.iparapheur.models import DossierStatus, SignatureState


@dataclass(frozen=True)
class Wait:
    """Still in the circuit: poll again on the next delay tier."""

    status: str | None
    overdue: bool = False  # past its DateLimite: reported once to the member, still polled


@dataclass(frozen=True)
class Fetch:
    """The circuit is over (``Archive``): fetch, store and journal the signature."""


@dataclass(frozen=True)
class Rejected:
    """Refused in the circuit: back to the member with the annotation and who refused."""

    annotation: str
    actor: str | None
    by: str


@dataclass(frozen=True)
class Missing:
    """i-Parapheur does not hold the dossier: created never (re-create, same DossierID) or
    already archived by an earlier attempt (the journal says which)."""


Decision = Wait | Fetch | Rejected | Missing


def decide(status: DossierStatus, *, deadline: date | None, today: date) -> Decision:
    """The flow's next move from the dossier's status (the last ``LogDossier`` decides)."""
    match status.state:
        case SignatureState.FINISHED:
            return Fetch()
        case SignatureState.REJECTED:
            return Rejected(
                annotation=status.annotation or "rejected without an annotation",
                actor=status.actor,
                by=status.rejected_by.value if status.rejected_by else "other",
            )
        case SignatureState.NOT_FOUND:
            return Missing()
    return Wait(status.status, overdue=deadline is not None and today > deadline)
