"""The sandbox business registries: INSEE Sirene 3.11, API Entreprise v3 and the Annuaire de
l'administration on loopback, with generated data, the real quotas, headers and error codes
(fidelity table: ``docs/sandbox-registries.md``)."""
