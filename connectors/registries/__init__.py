"""Connectors to the business registries: INSEE Sirene, API Entreprise, the Annuaire.

Each module speaks to one registry over httpx and answers typed results
(:mod:`connectors.registries.models`); failures are translated once, at this boundary,
into the Relais error tree (:mod:`connectors.registries.errors`). A number the registry
does not know is a result (:class:`~connectors.registries.models.NotFound`), not an error,
so the look-up service can cache it.
"""
