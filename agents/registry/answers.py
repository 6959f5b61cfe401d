"""How a registry answer reads on a member's notifications topic (flow type ``registry``).

The answer is a ``Notification`` in state ``answered``: ``message`` is one sentence,
``partner_ref`` the number asked, and ``details`` carries ``registry``, ``outcome``
(``found``, ``not_found``, ``not_diffusible``), ``from_cache`` and, when found, the record's
fields (``name``, ``active``, ``closed_on``, ``legal_category``, ``naf``, ``commune_code``…,
see :func:`agents.registry.service.record_payload`). Masked fields of a partly diffusible
unit are absent and listed in ``masked``.

A contractor check (the hub asks for a SIRET named by a contract acte: the look-up's
``contract_submission_id``) adds ``acte_submission_id`` and, when the establishment is
closed or unknown, ``warning`` (``contractor_closed``, ``contractor_unknown``): a warning
for the member, never a refusal of the acte.
"""

from __future__ import annotations

from relais.registry.cache import CacheEntry, Outcome

REGISTRY_NAMES = {"SIRENE": "sirene", "ENTREPRISE": "entreprise", "ANNUAIRE": "annuaire"}


CONTRACTOR_CLOSED = "contractor_closed"
CONTRACTOR_UNKNOWN = "contractor_unknown"


def contractor_warning(entry: CacheEntry) -> str | None:
    """The warning a contractor's answer carries (None: nothing to flag)."""
    if entry.outcome is Outcome.NOT_FOUND:
        return CONTRACTOR_UNKNOWN
    if entry.outcome is Outcome.FOUND and entry.active is False:
        return CONTRACTOR_CLOSED
    return None


def answer_message(entry: CacheEntry, contract: str | None = None) -> str:
    text = _plain_message(entry)
    if contract is None:
        return text
    warning = contractor_warning(entry)
    if warning is None:
        return f"contractor of acte {contract}: {text}"
    return f"warning: contractor of acte {contract}: {text}"


def _plain_message(entry: CacheEntry) -> str:
    number, registry = entry.identifier, entry.registry
    if entry.outcome is Outcome.NOT_FOUND:
        return f"{registry} does not know {number}"
    if entry.outcome is Outcome.NOT_DIFFUSIBLE:
        return f"{registry} holds {number} but may not show it (not diffusible)"
    name = entry.payload.get("name") or "a partly diffusible unit"
    if entry.active is False:
        since = entry.payload.get("closed_on")
        return f"{number} ({name}) is closed" + (f" since {since}" if since else "")
    return f"{number} is {name}, active"


def answer_details(
    entry: CacheEntry, *, from_cache: bool, contract: str | None = None
) -> dict[str, str]:
    details = {
        **{key: str(value) for key, value in entry.payload.items()},
        "registry": entry.registry,
        "outcome": entry.outcome.value,
        "from_cache": "true" if from_cache else "false",
    }
    if contract is not None:
        details["acte_submission_id"] = contract
        warning = contractor_warning(entry)
        if warning is not None:
            details["warning"] = warning
    return details
