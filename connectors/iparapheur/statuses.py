"""i-Parapheur's status vocabulary and the rule that reads a dossier's history.

Statuses seen in real sources (``../shared/domain/protocols.md`` §7.4; libriciel/pastell
``connecteur/iParapheur/IParapheur.php``; i-Parapheur 5's SOAP tests): NonLu, Lu, Signe,
Vise, EnCoursVisa, PretCachet, CachetOK, EnCoursMailSecPastell, Archive, RejetVisa,
RejetSignataire, RejetCachet, RejetMailSecPastell, RejetSignataireExterne,
SignatairePapier. Pastell reads the **last** ``LogDossier``: ``Archive`` means the circuit
is over, a ``Rejet*`` status that it was refused; anything else is still in progress.
"""

from __future__ import annotations

from connectors.iparapheur.models import (
    DossierStatus,
    LogEntry,
    Rejecter,
    SignatureState,
)

FINISHED_STATUS = "Archive"
REJECTED_STATUSES: dict[str, Rejecter] = {
    "RejetVisa": Rejecter.VIEWER,
    "RejetSignataire": Rejecter.SIGNER,
    "RejetSignataireExterne": Rejecter.SIGNER,
    "RejetCachet": Rejecter.SEAL,
    "RejetMailSecPastell": Rejecter.SECURE_MAIL,
}
SIGNED_STATUSES = frozenset({"Signe", "SignatairePapier"})
KNOWN_STATUSES = frozenset(
    {
        "NonLu", "Lu", "Signe", "Vise", "EnCoursVisa", "PretCachet", "CachetOK",
        "EnCoursMailSecPastell", "SignatairePapier", FINISHED_STATUS, *REJECTED_STATUSES,
    }
)


def status_from_history(dossier_id: str, history: list[LogEntry]) -> DossierStatus:
    """The dossier's state from its ``LogDossier`` entries, in the order i-Parapheur gave."""
    if not history:
        return DossierStatus(dossier_id=dossier_id, state=SignatureState.NOT_FOUND)
    last = history[-1]
    status = last.status.strip()
    signed_at = next(
        (entry.timestamp for entry in reversed(history) if entry.status in SIGNED_STATUSES),
        None,
    )
    if status == FINISHED_STATUS:
        state = SignatureState.FINISHED
    elif status in REJECTED_STATUSES or status.startswith("Rejet"):
        state = SignatureState.REJECTED
    else:
        state = SignatureState.IN_PROGRESS
    rejected_by = (
        REJECTED_STATUSES.get(status, Rejecter.OTHER) if state is SignatureState.REJECTED else None
    )
    return DossierStatus(
        dossier_id=dossier_id,
        state=state,
        status=status,
        annotation=last.annotation or None,
        actor=last.name or None,
        at=last.timestamp,
        rejected_by=rejected_by,
        signed_at=signed_at,
        history=tuple(history),
    )
