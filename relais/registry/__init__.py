"""Kernel pieces of the registry look-up service, free of Kafka and of any connector.

The quota guard (:mod:`relais.registry.bucket`), the circuit breaker
(:mod:`relais.registry.breaker`), the shared cache's entries and expiry
(:mod:`relais.registry.cache`) and the single-flight of concurrent look-ups
(:mod:`relais.registry.singleflight`). Each takes the time as an argument (seconds), so
unit tests drive them with a fake clock. How they run across the cluster: docs/registries.md.
"""
