"""How a registry answer reads on a member's notifications topic (flow type ``registry``).

The answer is a ``Notification`` in state ``answered``: ``message`` is one sentence,
``partner_ref`` the number asked, and ``details`` carries ``registry``, ``outcome``
(``found``, ``not_found``, ``not_diffusible``), ``from_cache`` and, when found, the record's
fields (``name``, ``active``, ``closed_on``, ``legal_category``, ``naf``, ``commune_code``…,
see :func:`agents.registry.service.record_payload`). Masked fields of a partly diffusible
unit are absent and listed in ``masked``.
"""

from __future__ import annotations

from relais.registry.cache import CacheEntry, Outcome

REGISTRY_NAMES = {"SIRENE": "sirene", "ENTREPRISE": "entreprise", "ANNUAIRE": "annuaire"}


def answer_message(entry: CacheEntry) -> str:
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


def answer_details(entry: CacheEntry, *, from_cache: bool) -> dict[str, str]:
    return {
        **{key: str(value) for key, value in entry.payload.items()},
        "registry": entry.registry,
        "outcome": entry.outcome.value,
        "from_cache": "true" if from_cache else "false",
    }
