"""Shared plumbing of HTTP partner connectors: client factory, error table, size caps, registry.

Every partner family (the TdT for actes and Hélios, the SEDA archive, i-Parapheur
through zeep's httpx transport, the business registries) builds on it:
:mod:`connectors.http.client` makes the ``httpx.AsyncClient`` of a member's
account, :mod:`connectors.http.errors` translates httpx failures and HTTP statuses
into the error tree, :mod:`connectors.http.limits` reads answers under a cap and
:mod:`connectors.http.registry` keeps one connector per (partner, member account).
"""
