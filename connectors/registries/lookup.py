"""The look-up both company registries (Sirene, API Entreprise) answer the same way:
a SIREN asks for the legal unit, a SIRET for the establishment."""

from __future__ import annotations

from abc import ABC, abstractmethod

from connectors.registries.models import LookupResult
from relais.identifiers import is_valid_siren, is_valid_siret


class UnitOrEstablishmentLookup(ABC):
    """A registry connector that reads units by SIREN and establishments by SIRET."""

    async def lookup(self, identifier: str) -> LookupResult:
        if is_valid_siren(identifier):
            return await self.unit(identifier)
        if is_valid_siret(identifier):
            return await self.establishment(identifier)
        raise ValueError(f"not a valid SIREN or SIRET: {identifier!r}")

    @abstractmethod
    async def unit(self, siren: str) -> LookupResult: ...

    @abstractmethod
    async def establishment(self, siret: str) -> LookupResult: ...
